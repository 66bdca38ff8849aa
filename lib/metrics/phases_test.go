package metrics

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPhasesLogAndObserveEachStep(t *testing.T) {
	p := StartPhases("test_op")
	time.Sleep(2 * time.Millisecond)
	p.Mark("first")
	p.Add("parallel", 5*time.Millisecond)
	p.Mark("second")
	p.Add("parallel", 5*time.Millisecond)
	d := p.Durations()
	if d["first"] < 2*time.Millisecond || d["parallel"] != 10*time.Millisecond || len(d) != 3 {
		t.Fatalf("durations = %v", d)
	}
	var buf bytes.Buffer
	p.Done(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	line := buf.String()
	for _, want := range []string{"msg=phases", "op=test_op", "total_ms=", "first_ms=", "parallel_ms=10", "second_ms="} {
		if !strings.Contains(line, want) {
			t.Errorf("log line %q lacks %q", line, want)
		}
	}
	if n := testutil.CollectAndCount(PhaseLatency, "flotilla_phase_duration_seconds"); n != 4 {
		t.Errorf("%d phase series, want 4 (first, parallel, second, total)", n)
	}
	var nilPhases *Phases
	nilPhases.Mark("x")
	nilPhases.Done(nil) // no panic
}
