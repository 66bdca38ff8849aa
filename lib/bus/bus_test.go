package bus

import (
	"testing"
	"time"

	eventsv1 "flotilla.dev/proto/events/v1"
	"github.com/nats-io/nats-server/v2/server/pse"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"flotilla.v1.>", "flotilla.v1.sandboxd.container.started", true},
		{"flotilla.v1.sandboxd.container.*", "flotilla.v1.sandboxd.container.started", true},
		{"flotilla.v1.sandboxd.container.*", "flotilla.v1.sandboxd.pod.started", false},
		{"flotilla.v1.>", "flotilla.v1", false},
		{"a.b", "a.b.c", false},
	}
	for _, c := range cases {
		if got := Match(c.p, c.s); got != c.want {
			t.Errorf("Match(%q,%q)=%v", c.p, c.s, got)
		}
	}
}

// A real embedded server: what one daemon publishes another receives.
func TestEmbeddedRoundTrip(t *testing.T) {
	srv, err := StartEmbedded("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	sub, err := Connect(srv.ClientURL(), "test-sub")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got := make(chan *eventsv1.Envelope, 1)
	unsub, err := sub.Subscribe(eventsv1.SubjectContainerAll, func(e *eventsv1.Envelope) { got <- e })
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	pub, err := Connect(srv.ClientURL(), "sandboxd")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	pub.Publish(eventsv1.SubjectContainerStarted, &eventsv1.Envelope{Payload: &eventsv1.Envelope_Container{
		Container: &eventsv1.ContainerEvent{ContainerId: "c1", State: "started"}}})
	select {
	case e := <-got:
		if e.Source != "sandboxd" || e.Subject != eventsv1.SubjectContainerStarted || e.GetContainer().GetContainerId() != "c1" {
			t.Fatalf("unexpected event %v", e)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no event")
	}
}

// The path emptied in pse.go must be the one nats-server's pse package
// reads: its ProcUsage fails on the empty path, and would succeed if the
// linkname named a variable pse no longer has.
func TestNATSProcSamplingStopped(t *testing.T) {
	var cpu float64
	var rss, vss int64
	if err := pse.ProcUsage(&cpu, &rss, &vss); err == nil {
		t.Fatalf("pse.ProcUsage still reads /proc (rss %d): its sampling was not stopped", rss)
	}
}
