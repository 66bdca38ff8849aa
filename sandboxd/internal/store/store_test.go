package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
)

func TestContainerTransitions(t *testing.T) {
	ok := [][2]ContainerState{
		{ContainerCreated, ContainerRunning}, {ContainerCreated, ContainerExited},
		{ContainerRunning, ContainerExited}, {ContainerUnknown, ContainerExited},
	}
	for _, tr := range ok {
		if err := tr[0].To(tr[1]); err != nil {
			t.Errorf("%s → %s: %v", tr[0], tr[1], err)
		}
	}
	bad := [][2]ContainerState{
		{ContainerExited, ContainerRunning}, {ContainerRunning, ContainerCreated},
		{ContainerExited, ContainerExited}, {ContainerRunning, ContainerRunning},
	}
	for _, tr := range bad {
		if err := tr[0].To(tr[1]); !errors.Is(err, errdefs.ErrFailedPrecondition) {
			t.Errorf("%s → %s: got %v, want FailedPrecondition", tr[0], tr[1], err)
		}
	}
}

func TestPodTransitions(t *testing.T) {
	if err := PodReady.To(PodNotReady); err != nil {
		t.Fatal(err)
	}
	if err := PodNotReady.To(PodNotReady); err != nil {
		t.Fatal("stop twice must be allowed:", err)
	}
	if err := PodNotReady.To(PodReady); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("notready → ready: %v", err)
	}
}

func TestStoreRoundTripAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutPod(&Pod{ID: "p1", State: PodReady, IPs: []string{"10.0.0.2"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutContainer(&Container{ID: "c1", PodID: "p1", State: ContainerExited, ExitCode: 3, Reason: "Error"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutContainer(&Container{ID: "c2", PodID: "p1", State: ContainerRunning}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteContainer("c2"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteContainer("missing"); err != nil {
		t.Fatal("deleting a missing record must succeed:", err)
	}
	s.Close()

	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pods, err := s.Pods()
	if err != nil || len(pods) != 1 || pods[0].ID != "p1" || pods[0].IPs[0] != "10.0.0.2" {
		t.Fatalf("pods %+v, %v", pods, err)
	}
	cs, err := s.Containers()
	if err != nil || len(cs) != 1 || cs[0].ExitCode != 3 || cs[0].State != ContainerExited {
		t.Fatalf("containers %+v, %v", cs, err)
	}
}

// Concurrent writes share commits and every one of them is on disk.
func TestConcurrentWritesShareCommits(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	const n = 64
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.PutContainer(&Container{ID: fmt.Sprintf("c%02d", i), PodID: "p1", State: ContainerCreated})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if s.commits >= n {
		t.Errorf("%d writes took %d commits: none was shared", n, s.commits)
	}
	t.Logf("%d writes, %d commits", n, s.commits)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cs, err := s.Containers()
	if err != nil || len(cs) != n {
		t.Fatalf("after reopen: %d containers, %v; want %d", len(cs), err, n)
	}
}

// A bad write in a shared commit fails only its own caller.
func TestBadWriteFailsOnlyItself(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	good := &write{bucket: bucketPods, key: []byte("p1"), val: []byte(`{"id":"p1"}`), err: make(chan error, 1)}
	bad := &write{bucket: bucketPods, key: nil, val: []byte(`{}`), err: make(chan error, 1)} // bbolt refuses an empty key
	s.apply([]*write{good, bad})
	if err := <-good.err; err != nil {
		t.Errorf("good write: %v", err)
	}
	if err := <-bad.err; err == nil {
		t.Error("write with an empty key succeeded")
	}
	pods, err := s.Pods()
	if err != nil || len(pods) != 1 || pods[0].ID != "p1" {
		t.Fatalf("pods %v, %v; want p1", pods, err)
	}
}
