package names

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/containerd/errdefs"
)

func TestRetryWaitsForFirstResult(t *testing.T) {
	r := New()
	ctx := context.Background()
	res, _, err := r.Reserve(ctx, "pod_a", "k1")
	if err != nil || res == nil {
		t.Fatal(res, err)
	}
	got := make(chan string)
	go func() {
		_, id, err := r.Reserve(ctx, "pod_a", "k1")
		if err != nil {
			t.Error(err)
		}
		got <- id
	}()
	res.Done("id-1", nil)
	if id := <-got; id != "id-1" {
		t.Fatalf("retry got %q, want id-1", id)
	}
	// A retry after the first settled also gets the same id.
	if res, id, err := r.Reserve(ctx, "pod_a", "k1"); res != nil || id != "id-1" || err != nil {
		t.Fatalf("late retry: %v %q %v", res, id, err)
	}
}

func TestDifferentRequestIsAlreadyExists(t *testing.T) {
	r := New()
	res, _, _ := r.Reserve(context.Background(), "n", "k1")
	_, _, err := r.Reserve(context.Background(), "n", "k2")
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("in flight: %v", err)
	}
	res.Done("id", nil)
	if _, _, err := r.Reserve(context.Background(), "n", "k2"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("settled: %v", err)
	}
	r.Release("n", "other")
	if _, _, err := r.Reserve(context.Background(), "n", "k2"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatal("release with another id freed the name")
	}
	r.Release("n", "id")
	if res, _, err := r.Reserve(context.Background(), "n", "k2"); err != nil || res == nil {
		t.Fatalf("after release: %v", err)
	}
}

func TestFailedCreateReleasesAndWaiterSeesError(t *testing.T) {
	r := New()
	res, _, _ := r.Reserve(context.Background(), "n", "k")
	errc := make(chan error)
	go func() { _, _, err := r.Reserve(context.Background(), "n", "k"); errc <- err }()
	for r.waiting("n") == 0 {
		runtime.Gosched()
	}
	boom := errors.New("boom")
	res.Done("", boom)
	if err := <-errc; !errors.Is(err, boom) {
		t.Fatalf("waiter: %v", err)
	}
	if res, _, err := r.Reserve(context.Background(), "n", "k"); err != nil || res == nil {
		t.Fatalf("name not released after failure: %v", err)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	r := New()
	r.Reserve(context.Background(), "n", "k")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := r.Reserve(ctx, "n", "k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}
