package stats

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct{ p, want float64 }{{50, 5}, {90, 9}, {100, 10}, {1, 1}, {0, 1}, {95, 10}} {
		if got := Percentile(v, c.p); got != c.want {
			t.Errorf("Percentile(1..10, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Percentile([]float64{7}, 90); got != 7 {
		t.Errorf("one value: got %v", got)
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("no values must give NaN")
	}
}

func TestSummarizeUnsortedInput(t *testing.T) {
	ds := []time.Duration{30 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 1500 * time.Microsecond}
	s := Summarize(ds)
	if s.N != 4 || s.P50 != 10 || s.P90 != 30 || s.Min != 1.5 || s.Max != 30 || s.Mean != 15.375 {
		t.Fatalf("summary = %+v", s)
	}
	if z := Summarize(nil); z.N != 0 || z.P50 != 0 {
		t.Fatalf("empty summary = %+v", z)
	}
}

func TestRecorderFailuresAreCountedNotTimed(t *testing.T) {
	var r Recorder
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i%5 == 0 {
				r.Observe(time.Hour, errors.New("boom"))
				return
			}
			r.Observe(time.Duration(i)*time.Millisecond, nil)
		}(i)
	}
	wg.Wait()
	r.Fail(errors.New("other"))
	r.Fail(errors.New("third"))
	r.Fail(errors.New("fourth")) // beyond the sample cap
	s := r.Summary()
	if s.N != 40 || s.Errors != 13 {
		t.Fatalf("n=%d errors=%d, want 40 and 13", s.N, s.Errors)
	}
	if s.Max >= 50 {
		t.Fatalf("a failed call was timed: max=%v", s.Max)
	}
	if len(s.Sample) != 3 || s.Sample[0] != "boom" || s.Sample[1] != "other" {
		t.Fatalf("error samples = %q", s.Sample)
	}
}

func TestMedian(t *testing.T) {
	in := []float64{30, 10, 20}
	if m := Median(in); m != 20 {
		t.Errorf("Median(30, 10, 20) = %v, want 20", m)
	}
	if in[0] != 30 {
		t.Errorf("Median reordered its input: %v", in)
	}
	if m := Median([]float64{4, 1, 3, 2}); m != 2.5 {
		t.Errorf("Median(4, 1, 3, 2) = %v, want 2.5", m)
	}
	if m := Median(nil); !math.IsNaN(m) {
		t.Errorf("Median() = %v, want NaN", m)
	}
}
