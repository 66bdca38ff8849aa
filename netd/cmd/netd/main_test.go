package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"flotilla.dev/lib/bus"
	"flotilla.dev/netd/conflist"
	eventsv1 "flotilla.dev/proto/events/v1"
	netv1 "flotilla.dev/proto/net/v1"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// TestKilledNetdKeepsNetworks runs the real binary with a real NATS
// server: a pod set up before netd is SIGKILLed keeps its network, is
// reported after the restart and is torn down by the new process.
func TestKilledNetdKeepsNetworks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	_, file, _, _ := runtime.Caller(0)
	cniBin, _ := filepath.Abs(filepath.Join(filepath.Dir(file), "..", "..", "..", ".tools", "cni"))
	if _, err := os.Stat(filepath.Join(cniBin, "bridge")); err != nil {
		t.Skip("CNI plugins not installed")
	}
	// Hold the test's subnet against a concurrent run of this test.
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "flotilla-netd-test-10.213.20.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lock.Close() })
	dir := t.TempDir()
	bin := filepath.Join(dir, "netd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build netd: %v\n%s", err, out)
	}

	nats, err := bus.StartEmbedded("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nats.Shutdown)
	sub, err := bus.Connect(nats.ClientURL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	events := make(chan *eventsv1.NetworkEvent, 32)
	unsub, err := sub.Subscribe("flotilla.v1.netd.network.>", func(e *eventsv1.Envelope) { events <- e.GetNetwork() })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unsub)
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}

	rnd := make([]byte, 4)
	_, _ = rand.Read(rnd)
	bridge := "flt" + hex.EncodeToString(rnd)
	root, run, confDir := filepath.Join(dir, "lib"), filepath.Join(dir, "run"), filepath.Join(dir, "net.d")
	socket := filepath.Join(dir, "netd.sock")
	t.Cleanup(func() {
		// Whatever the test left: pins and the bridge.
		ents, _ := os.ReadDir(filepath.Join(run, "netns"))
		for _, e := range ents {
			p := filepath.Join(run, "netns", e.Name())
			_ = exec.Command("umount", "-l", p).Run()
		}
		if l, err := netlink.LinkByName(bridge); err == nil {
			_ = netlink.LinkDel(l)
		}
	})
	cl, err := conflist.Bridge{Name: "flt-daemon-test", Bridge: bridge, Subnets: []string{"10.213.20.0/24"},
		DataDir: filepath.Join(root, "ipam")}.JSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "10-test.conflist"), cl, 0o644); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "flotilla.toml")
	cfg := fmt.Sprintf("[netd]\nsocket = %q\nnats_url = %q\nroot = %q\nrun_root = %q\ncni_conf_dir = %q\ncni_bin_dirs = [%q]\n",
		socket, nats.ClientURL(), root, run, confDir, cniBin)
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	start := func() (*exec.Cmd, netv1.NetServiceClient) {
		t.Helper()
		cmd := exec.Command(bin, "--config", cfgFile)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if !testing.Verbose() {
			cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
		conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		c := netv1.NewNetServiceClient(conn)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := c.Status(ctx, &netv1.StatusRequest{}, grpc.WaitForReady(true))
		if err != nil || !st.GetReady() {
			t.Fatalf("netd status: %v, %v", st, err)
		}
		return cmd, c
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cmd, c := start()
	resp, err := c.SetupPod(ctx, &netv1.SetupPodRequest{PodId: "survivor", Name: "survivor", Namespace: "default", Uid: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	pod := resp.GetNetwork()
	waitEvent(t, events, "setup", "survivor")

	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	_, _ = cmd.Process.Wait()

	_, c = start()
	st, err := c.PodStatus(ctx, &netv1.PodStatusRequest{PodId: "survivor"})
	if err != nil || st.GetNetwork().GetIps()[0] != pod.GetIps()[0] || st.GetNetwork().GetNetnsPath() != pod.GetNetnsPath() {
		t.Fatalf("after restart: %v, %v (was %v)", st, err, pod)
	}
	// The pod's network still works: a second pod reaches it.
	h, err := ns.GetNS(pod.GetNetnsPath())
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	if err := h.Do(func(ns.NetNS) error { l, err = net.Listen("tcp", ":7000"); return err }); err != nil {
		t.Fatal(err)
	}
	_ = h.Close()
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			_, _ = c.Write([]byte("alive"))
			_ = c.Close()
		}
	}()
	resp, err = c.SetupPod(ctx, &netv1.SetupPodRequest{PodId: "caller", Name: "caller", Namespace: "default", Uid: "u2"})
	if err != nil {
		t.Fatal(err)
	}
	h2, err := ns.GetNS(resp.GetNetwork().GetNetnsPath())
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	err = h2.Do(func(ns.NetNS) error {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(pod.GetIps()[0], "7000"), 10*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		got, err = io.ReadAll(conn)
		return err
	})
	_ = h2.Close()
	if err != nil || string(got) != "alive" {
		t.Fatalf("survivor unreachable after restart: %q, %v", got, err)
	}

	for _, id := range []string{"survivor", "caller"} {
		if _, err := c.TeardownPod(ctx, &netv1.TeardownPodRequest{PodId: id}); err != nil {
			t.Fatal(err)
		}
	}
	waitEvent(t, events, "teardown", "survivor")
	if ents, _ := os.ReadDir(filepath.Join(run, "netns")); len(ents) != 0 {
		t.Errorf("netns pins left: %d", len(ents))
	}
	ips, _ := filepath.Glob(filepath.Join(root, "ipam", "flt-daemon-test", "10.*"))
	if len(ips) != 0 {
		t.Errorf("IPs left: %v", ips)
	}
}

func waitEvent(t *testing.T, events <-chan *eventsv1.NetworkEvent, state, pod string) {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case e := <-events:
			if e.GetState() == state && e.GetPodId() == pod {
				return
			}
		case <-timeout:
			t.Fatalf("no %s event for %s", state, pod)
		}
	}
}
