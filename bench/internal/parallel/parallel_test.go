package parallel

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

func TestRunCallsEachOnceOnAtMostWorkers(t *testing.T) {
	const n, workers = 50, 4
	var running, most atomic.Int32
	var mu sync.Mutex
	seen := map[int]int{}
	Run(context.Background(), workers, n, func(i int) {
		r := running.Add(1)
		for {
			m := most.Load()
			if r <= m || most.CompareAndSwap(m, r) {
				break
			}
		}
		mu.Lock()
		seen[i]++
		mu.Unlock()
		running.Add(-1)
	})
	if len(seen) != n {
		t.Fatalf("%d items called, want %d", len(seen), n)
	}
	for i, c := range seen {
		if c != 1 {
			t.Errorf("item %d called %d times", i, c)
		}
	}
	if m := most.Load(); m > workers {
		t.Errorf("%d calls at once, want at most %d", m, workers)
	}
}

func TestRunStopsHandingOutWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	Run(ctx, 1, 100, func(i int) {
		if calls.Add(1) == 3 {
			cancel()
		}
	})
	if c := calls.Load(); c != 3 {
		t.Errorf("%d calls after cancelling at the third, want 3", c)
	}
}
