package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"flotilla.dev/lib/bus"
	"flotilla.dev/netd/conflist"
	"flotilla.dev/netd/internal/config"
	eventsv1 "flotilla.dev/proto/events/v1"
	netv1 "flotilla.dev/proto/net/v1"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Subnets 10.213.<n>.0/24 are reserved for netd's tests; each test uses its
// own n so tests of this package never share addresses.

// cniBinDir is the upstream v1.10.0 plugins the tools install builds.
func cniBinDir(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	dir, _ := filepath.Abs(filepath.Join(filepath.Dir(file), "..", "..", "..", ".tools", "cni"))
	if _, err := os.Stat(filepath.Join(dir, "bridge")); err != nil {
		t.Skipf("CNI plugins not installed in %s (run hack/install-deps.sh)", dir)
	}
	return dir
}

type env struct {
	t       testing.TB
	cfg     *config.Config
	svc     *Service
	bus     *bus.Mem
	bridge  string
	subnet  string
	subnets []string
	netName string
	ipamDir string
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newEnv makes a netd with its own roots, bridge "flt<random>" and subnet
// 10.213.<n>.0/24. writeConf=false leaves the conf dir empty.
func newEnv(t testing.TB, n int, writeConf bool) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	bin := cniBinDir(t)
	lockSubnet(t, n)
	root := t.TempDir()
	cfg := config.Defaults()
	cfg.Root = filepath.Join(root, "lib")
	cfg.RunRoot = filepath.Join(root, "run")
	cfg.ConfDir = filepath.Join(root, "net.d")
	cfg.BinDirs = []string{bin}
	if err := os.MkdirAll(cfg.ConfDir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, cfg: cfg, bridge: "flt" + randHex(4), subnet: fmt.Sprintf("10.213.%d.0/24", n),
		netName: "flt-test-" + randHex(4), ipamDir: filepath.Join(cfg.Root, "ipam")}
	e.subnets = []string{e.subnet}
	e.restart()
	t.Cleanup(e.cleanup)
	if writeConf {
		e.writeConf("10-test.conflist", e.conflist(nil))
	}
	return e
}

// lockSubnet holds 10.213.<n>.0/24 for the test: a concurrent run of the
// same test (another checkout, a second go test) waits instead of putting a
// second gateway on the subnet.
func lockSubnet(t testing.TB, n int) {
	t.Helper()
	f, err := os.OpenFile(fmt.Sprintf("%s/flotilla-netd-test-10.213.%d.lock", os.TempDir(), n), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() }) // closing releases the lock
}

// restart builds a new Service on the same roots, as a restarted netd.
func (e *env) restart() {
	e.t.Helper()
	if e.svc != nil {
		_ = e.svc.Close() // as a killed netd's lock on its records ends
	}
	e.bus = bus.NewMem("netd")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	svc, err := New(e.cfg, e.bus, log)
	if err != nil {
		e.t.Fatal(err)
	}
	svc.Reconcile(context.Background())
	e.svc = svc
}

// cleanup tears down every pod, removes pins and the bridge.
func (e *env) cleanup() {
	ctx := context.Background()
	resp, _ := e.svc.ListPods(ctx, &netv1.ListPodsRequest{})
	for _, n := range resp.GetNetworks() {
		if _, err := e.svc.TeardownPod(ctx, &netv1.TeardownPodRequest{PodId: n.GetPodId()}); err != nil {
			e.t.Errorf("cleanup teardown %s: %v", n.GetPodId(), err)
		}
	}
	e.svc.Reconcile(ctx)
	_ = e.svc.Close()
	if l, err := netlink.LinkByName(e.bridge); err == nil {
		_ = netlink.LinkDel(l)
	}
}

// conflist is what flotctl up writes (conflist.Bridge: bridge + host-local
// in the env's subnets, portmap, bandwidth, firewall, the netfilter API
// detected) then extra plugins.
func (e *env) conflist(extra []map[string]any) []byte {
	e.t.Helper()
	b, err := conflist.Bridge{Name: e.netName, Bridge: e.bridge, Subnets: e.subnets, DataDir: e.ipamDir,
		Netfilter: conflist.Detect()}.JSON()
	if err != nil {
		e.t.Fatal(err)
	}
	if len(extra) == 0 {
		return b
	}
	var list map[string]any
	if err := json.Unmarshal(b, &list); err != nil {
		e.t.Fatal(err)
	}
	for _, p := range extra {
		list["plugins"] = append(list["plugins"].([]any), p)
	}
	b, _ = json.Marshal(list)
	return b
}

// logPluginCalls restarts the env's netd with a plugin directory in which
// plugin is a wrapper that logs "<CNI_COMMAND>:<pod>:<GOMAXPROCS>" of each call, then
// runs the real one. The returned func reads the calls so far.
func (e *env) logPluginCalls(plugin string) func() []string {
	e.t.Helper()
	real := e.cfg.BinDirs[0]
	dir, log := e.t.TempDir(), filepath.Join(e.t.TempDir(), "calls")
	ents, err := os.ReadDir(real)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, ent := range ents {
		if ent.Name() != plugin {
			if err := os.Symlink(filepath.Join(real, ent.Name()), filepath.Join(dir, ent.Name())); err != nil {
				e.t.Fatal(err)
			}
		}
	}
	wrapper := fmt.Sprintf("#!/bin/sh\necho \"$CNI_COMMAND:$CNI_CONTAINERID:$GOMAXPROCS\" >>%s\nexec %s \"$@\"\n",
		log, filepath.Join(real, plugin))
	if err := os.WriteFile(filepath.Join(dir, plugin), []byte(wrapper), 0o755); err != nil {
		e.t.Fatal(err)
	}
	e.cfg.BinDirs = []string{dir}
	e.restart()
	return func() []string {
		b, _ := os.ReadFile(log)
		return strings.Fields(string(b))
	}
}

func (e *env) writeConf(name string, b []byte) {
	e.t.Helper()
	p := filepath.Join(e.cfg.ConfDir, name)
	if err := os.WriteFile(p+".tmp", b, 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) setup(id string, mod func(*netv1.SetupPodRequest)) (*netv1.PodNetwork, error) {
	req := &netv1.SetupPodRequest{PodId: id, Name: "pod-" + id, Namespace: "default", Uid: "uid-" + id}
	if mod != nil {
		mod(req)
	}
	resp, err := e.svc.SetupPod(context.Background(), req)
	return resp.GetNetwork(), err
}

func (e *env) mustSetup(id string, mod func(*netv1.SetupPodRequest)) *netv1.PodNetwork {
	e.t.Helper()
	n, err := e.setup(id, mod)
	if err != nil {
		e.t.Fatalf("SetupPod %s: %v", id, err)
	}
	if len(n.GetIps()) == 0 || n.GetNetnsPath() == "" {
		e.t.Fatalf("SetupPod %s: no IP or netns: %v", id, n)
	}
	return n
}

func (e *env) teardown(id string) {
	e.t.Helper()
	if _, err := e.svc.TeardownPod(context.Background(), &netv1.TeardownPodRequest{PodId: id}); err != nil {
		e.t.Fatalf("TeardownPod %s: %v", id, err)
	}
}

// allocatedIPs lists host-local's allocations for the env's network.
func (e *env) allocatedIPs() []string {
	ents, _ := os.ReadDir(filepath.Join(e.ipamDir, e.netName))
	var ips []string
	for _, d := range ents {
		if net.ParseIP(d.Name()) != nil {
			ips = append(ips, d.Name())
		}
	}
	return ips
}

// bridgePorts lists the links enslaved to the env's bridge (host veths).
func (e *env) bridgePorts() []string {
	br, err := netlink.LinkByName(e.bridge)
	if err != nil {
		return nil
	}
	links, _ := netlink.LinkList()
	var out []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			out = append(out, l.Attrs().Name)
		}
	}
	return out
}

// subnetPrefix is "10.213.<n>." of the env's subnet.
func (e *env) subnetPrefix() string { return strings.TrimSuffix(e.subnet, "0/24") }

func (e *env) pins() []string {
	ents, _ := os.ReadDir(filepath.Join(e.cfg.RunRoot, "netns"))
	var out []string
	for _, d := range ents {
		out = append(out, d.Name())
	}
	return out
}

// assertNothingLeft checks no namespace, veth, IP or record remains.
func (e *env) assertNothingLeft() {
	e.t.Helper()
	if p := e.pins(); len(p) > 0 {
		e.t.Errorf("netns pins left: %v", p)
	}
	if ips := e.allocatedIPs(); len(ips) > 0 {
		e.t.Errorf("IP allocations left: %v", ips)
	}
	// A namespace that vanished before teardown takes its veth with it, but
	// the kernel dismantles a dead namespace in a work queue a moment later
	// (cleanup_net), so the bridge's ports get a few seconds to go.
	v := e.bridgePorts()
	for deadline := time.Now().Add(5 * time.Second); len(v) > 0 && time.Now().Before(deadline); v = e.bridgePorts() {
		time.Sleep(20 * time.Millisecond)
	}
	if len(v) > 0 {
		e.t.Errorf("veths left on %s: %v", e.bridge, v)
	}
	if out, err := exec.Command("iptables-save").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, e.subnetPrefix()) {
				e.t.Errorf("iptables rule left: %s", line)
			}
		}
	}
	if recs, _ := e.svc.store.List(); len(recs) > 0 {
		e.t.Errorf("records left: %d", len(recs))
	}
}

func (e *env) events(state string) []*eventsv1.NetworkEvent {
	var out []*eventsv1.NetworkEvent
	for _, ev := range e.bus.Published {
		if n := ev.GetNetwork(); n != nil && n.GetState() == state {
			out = append(out, n)
		}
	}
	return out
}

// listenIn opens a TCP listener inside the namespace at path that greets
// every connection with msg.
func listenIn(t *testing.T, path, addr, msg string) net.Listener {
	t.Helper()
	h, err := ns.GetNS(path)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var l net.Listener
	if err := h.Do(func(ns.NetNS) error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(msg))
			_ = c.Close()
		}
	}()
	return l
}

// dial connects to addr (from the namespace at path, or the host if path
// is empty) and returns what the server said.
func dial(path, addr string) (string, error) {
	var got string
	do := func() error {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(c)
		got = string(b)
		return err
	}
	if path == "" {
		return got, do()
	}
	h, err := ns.GetNS(path)
	if err != nil {
		return "", err
	}
	defer h.Close()
	err = h.Do(func(ns.NetNS) error { return do() })
	return got, err
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
