package phases

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestCollectorSummarisesPhaseLines(t *testing.T) {
	log := `time=2026-11-28T16:00:00Z level=INFO msg="pod sandbox ready" pod_id=a
time=2026-11-28T16:00:00Z level=DEBUG msg=phases pod_id=a op=run_pod total_ms=30 pin_namespaces_ms=2 network_ms=20
time=2026-11-28T16:00:01Z level=DEBUG msg=phases pod_id=b op=run_pod total_ms=50 pin_namespaces_ms=4 network_ms=40
time=2026-11-28T16:00:01Z level=DEBUG msg=phases op=setup_pod total_ms=18 cni_add_ms=15
`
	c := NewCollector()
	if err := c.Read(strings.NewReader(log)); err != nil {
		t.Fatal(err)
	}
	steps := c.Steps()
	got := map[string]float64{}
	n := map[string]int{}
	for _, s := range steps {
		got[s.Op+"/"+s.Phase] = s.Mean
		n[s.Op+"/"+s.Phase] = s.N
	}
	if len(steps) != 5 || got["run_pod/total"] != 40 || got["run_pod/network"] != 30 || n["run_pod/pin_namespaces"] != 2 ||
		got["setup_pod/cni_add"] != 15 {
		t.Fatalf("steps = %+v", steps)
	}
	if steps[0].Op != "run_pod" || steps[0].Phase != "total" || steps[3].Op != "setup_pod" {
		t.Fatalf("order = %+v", steps)
	}
	var b bytes.Buffer
	Print(&b, steps)
	if !strings.Contains(b.String(), "  network") {
		t.Fatalf("table:\n%s", b.String())
	}
}

func TestCollectorWindow(t *testing.T) {
	log := `time=2026-11-28T16:00:00.100Z level=DEBUG msg=phases op=run_pod total_ms=30
time=2026-11-28T16:00:05.000Z level=DEBUG msg=phases op=run_pod total_ms=90
`
	c := NewCollector()
	c.From, _ = time.Parse(time.RFC3339, "2026-11-28T16:00:00Z")
	c.To, _ = time.Parse(time.RFC3339, "2026-11-28T16:00:01Z")
	if err := c.Read(strings.NewReader(log)); err != nil {
		t.Fatal(err)
	}
	if s := c.Steps(); len(s) != 1 || s[0].N != 1 || s[0].Mean != 30 {
		t.Fatalf("steps in window = %+v", s)
	}
}
