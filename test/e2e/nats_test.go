package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"flotilla.dev/ctl/fleet"
	"flotilla.dev/lib/bus"
	eventsv1 "flotilla.dev/proto/events/v1"
	"flotilla.dev/test/e2e/framework"
)

// One setting points the whole fleet at an external NATS cluster: the
// daemons publish through node 0 and a subscriber on node 1 sees them.
func TestExternalNATSCluster(t *testing.T) {
	cluster := framework.StartNATSCluster(t, 2)

	sub, err := bus.Connect(cluster.URLs[1], "e2e")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got := make(chan *eventsv1.Envelope, 16)
	unsub, err := sub.Subscribe(eventsv1.SubjectAll, func(e *eventsv1.Envelope) { got <- e })
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	// Wait for the route between the nodes: a probe published on node 0
	// must reach node 1.
	pub, err := bus.Connect(cluster.URLs[0], "probe")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	deadline := time.Now().Add(15 * time.Second)
probe:
	for {
		pub.Publish("flotilla.v1.e2e.probe.ping", &eventsv1.Envelope{})
		select {
		case <-got:
			break probe
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("nats cluster routes never formed")
		}
	}

	f := framework.StartFleet(t, framework.Options{Options: fleet.Options{
		NATSURL: strings.Join(cluster.URLs[:1], ","), Restart: true}})
	cfg := readFile(t, f.Layout.ConfigFile)
	if !strings.Contains(cfg, "nats_embedded = false") {
		t.Fatalf("criproxy still embeds NATS:\n%s", cfg)
	}
	// Each daemon's started event arrives through the other node (they
	// may have been published before the fleet was ready: restart netd to
	// get one for sure).
	if err := f.Kill("netd", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(20 * time.Second)
	for {
		select {
		case e := <-got:
			if e.Subject == eventsv1.SubjectNetdStarted && e.GetDaemon().GetName() == "netd" {
				return
			}
		case <-timeout:
			t.Fatal("no netd started event on the other cluster node")
		}
	}
}
