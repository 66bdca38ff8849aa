package store

import (
	"errors"
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
