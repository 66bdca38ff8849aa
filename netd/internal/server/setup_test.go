package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"flotilla.dev/lib/netns"
	"flotilla.dev/netd/internal/store"
	netv1 "flotilla.dev/proto/net/v1"
	"github.com/containerd/errdefs"
	"github.com/vishvananda/netlink"
)

func TestTwoPodsReachEachOther(t *testing.T) {
	e := newEnv(t, 1, true)
	a := e.mustSetup("poda", nil)
	b := e.mustSetup("podb", nil)
	if a.GetIps()[0] == b.GetIps()[0] {
		t.Fatalf("both pods got %s", a.GetIps()[0])
	}
	_, subnet, _ := net.ParseCIDR(e.subnet)
	if !subnet.Contains(net.ParseIP(a.GetIps()[0])) {
		t.Fatalf("pod IP %s outside %s", a.GetIps()[0], e.subnet)
	}
	listenIn(t, a.GetNetnsPath(), ":8080", "hello from a")
	got, err := dial(b.GetNetnsPath(), net.JoinHostPort(a.GetIps()[0], "8080"))
	if err != nil || got != "hello from a" {
		t.Fatalf("pod b -> pod a: %q, %v", got, err)
	}
	if len(e.events("setup")) != 2 {
		t.Errorf("want 2 setup events, got %d", len(e.events("setup")))
	}
	e.teardown("poda")
	e.teardown("podb")
	e.assertNothingLeft()
	if len(e.events("teardown")) != 2 {
		t.Errorf("want 2 teardown events, got %d", len(e.events("teardown")))
	}
}

// TestHostPortAnswersOnLoopback also checks that portmap runs only for a
// pod that publishes a host port: netd answers for it otherwise.
func TestHostPortAnswersOnLoopback(t *testing.T) {
	e := newEnv(t, 2, true)
	calls := e.logPluginCalls("portmap")
	e.mustSetup("plain", nil)
	if _, err := e.svc.CheckPod(context.Background(), &netv1.CheckPodRequest{PodId: "plain"}); err != nil {
		t.Fatalf("CheckPod of a pod without host ports: %v", err)
	}
	e.teardown("plain")
	if got := calls(); len(got) != 0 {
		t.Errorf("portmap ran for a pod without host ports: %v", got)
	}

	port := freePort(t)
	p := e.mustSetup("hp", func(r *netv1.SetupPodRequest) {
		r.PortMappings = []*netv1.PortMapping{{Protocol: "tcp", ContainerPort: 8080, HostPort: int32(port)}}
	})
	listenIn(t, p.GetNetnsPath(), ":8080", "published")
	got, err := dial("", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil || got != "published" {
		t.Fatalf("127.0.0.1:%d: %q, %v", port, got, err)
	}
	e.teardown("hp")
	e.assertNothingLeft()
	if _, err := dial("", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		t.Fatal("hostPort still answers after teardown")
	}
	if got := calls(); !slices.Equal(got, []string{"ADD:hp:1", "DEL:hp:1"}) {
		t.Errorf("portmap calls for the pod with a host port: %v, want ADD and DEL, with GOMAXPROCS=1", got)
	}
}

func TestSetupAndTeardownAreIdempotent(t *testing.T) {
	e := newEnv(t, 3, true)
	first := e.mustSetup("idem", nil)
	again := e.mustSetup("idem", nil)
	if first.GetIps()[0] != again.GetIps()[0] || first.GetNetnsPath() != again.GetNetnsPath() {
		t.Fatalf("second SetupPod changed the network: %v vs %v", first, again)
	}
	if n := len(e.allocatedIPs()); n != 1 {
		t.Fatalf("want 1 IP allocated, got %d", n)
	}
	st, err := e.svc.PodStatus(context.Background(), &netv1.PodStatusRequest{PodId: "idem"})
	if err != nil || st.GetNetwork().GetIps()[0] != first.GetIps()[0] || st.GetNetwork().GetNetwork() != e.netName {
		t.Fatalf("PodStatus: %v, %v", st, err)
	}
	if _, err := e.svc.CheckPod(context.Background(), &netv1.CheckPodRequest{PodId: "idem"}); err != nil {
		t.Fatalf("CheckPod: %v", err)
	}
	e.teardown("idem")
	e.teardown("idem")
	e.teardown("never-existed")
	e.assertNothingLeft()
	if _, err := e.svc.PodStatus(context.Background(), &netv1.PodStatusRequest{PodId: "idem"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("PodStatus after teardown: want NotFound, got %v", err)
	}
}

func TestTeardownReleasesIPWhenNamespaceGone(t *testing.T) {
	e := newEnv(t, 4, true)
	p := e.mustSetup("gone", nil)
	if err := netns.Remove(p.GetNetnsPath()); err != nil {
		t.Fatal(err)
	}
	e.teardown("gone")
	e.assertNothingLeft()
}

func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t, 5, true)
	ctx := context.Background()
	cases := map[string]*netv1.SetupPodRequest{
		"empty id":     {Name: "a", Namespace: "b"},
		"path id":      {PodId: "../etc", Name: "a", Namespace: "b"},
		"no name":      {PodId: "x1", Namespace: "b"},
		"bad protocol": {PodId: "x2", Name: "a", Namespace: "b", PortMappings: []*netv1.PortMapping{{Protocol: "icmp", ContainerPort: 1, HostPort: 2}}},
		"bad port":     {PodId: "x3", Name: "a", Namespace: "b", PortMappings: []*netv1.PortMapping{{ContainerPort: 70000, HostPort: 2}}},
		"bad bandwidth": {PodId: "x4", Name: "a", Namespace: "b",
			Annotations: map[string]string{"kubernetes.io/ingress-bandwidth": "fast"}},
	}
	for name, req := range cases {
		if _, err := e.svc.SetupPod(ctx, req); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: want InvalidArgument, got %v", name, err)
		}
	}
	if _, err := e.svc.TeardownPod(ctx, &netv1.TeardownPodRequest{PodId: "a/b"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("teardown a/b: want InvalidArgument, got %v", err)
	}
	if _, err := e.svc.PodStatus(ctx, &netv1.PodStatusRequest{PodId: "unknown"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("PodStatus unknown: want NotFound, got %v", err)
	}
	if _, err := e.svc.UpdateConfig(ctx, &netv1.UpdateConfigRequest{PodCidr: "10.0.0.0/99"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("UpdateConfig bad CIDR: want InvalidArgument, got %v", err)
	}
	e.assertNothingLeft()
}

func TestRestartKeepsNetworksAndReleasesStale(t *testing.T) {
	e := newEnv(t, 6, true)
	keep := e.mustSetup("keep", nil)
	stale := e.mustSetup("stale", nil)
	listenIn(t, keep.GetNetnsPath(), ":8080", "still here")
	// An orphan pin without a record (netd killed between pin and record
	// is impossible, but a stray pin is still removed).
	orphan := e.cfg.RunRoot + "/netns/orphan"
	if err := netns.Create(orphan); err != nil {
		t.Fatal(err)
	}
	// The stale pod's namespace vanishes while netd is down.
	if err := netns.Remove(stale.GetNetnsPath()); err != nil {
		t.Fatal(err)
	}
	e.restart()
	if netns.IsPinned(orphan) {
		t.Error("orphan netns not removed at start")
	}
	if _, err := e.svc.PodStatus(context.Background(), &netv1.PodStatusRequest{PodId: "stale"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("stale pod: want NotFound after restart, got %v", err)
	}
	if ips := e.allocatedIPs(); len(ips) != 1 || ips[0] != keep.GetIps()[0] {
		t.Errorf("after restart want only %s allocated, got %v", keep.GetIps()[0], ips)
	}
	st, err := e.svc.PodStatus(context.Background(), &netv1.PodStatusRequest{PodId: "keep"})
	if err != nil || st.GetNetwork().GetIps()[0] != keep.GetIps()[0] {
		t.Fatalf("kept pod after restart: %v, %v", st, err)
	}
	other := e.mustSetup("other", nil)
	got, err := dial(other.GetNetnsPath(), net.JoinHostPort(keep.GetIps()[0], "8080"))
	if err != nil || got != "still here" {
		t.Fatalf("kept pod unreachable after restart: %q, %v", got, err)
	}
	e.teardown("keep")
	e.teardown("other")
	e.assertNothingLeft()
}

func TestFailingPluginLeavesNothing(t *testing.T) {
	e := newEnv(t, 7, false)
	// tuning runs after bridge allocated an IP and made the veth, then fails.
	e.writeConf("10-test.conflist", e.conflist([]map[string]any{
		{"type": "tuning", "sysctl": map[string]string{"net.ipv4.conf.eth0.no_such_sysctl": "1"}}}))
	_, err := e.setup("fail", nil)
	if err == nil {
		t.Fatal("SetupPod succeeded with a failing plugin")
	}
	if !contains(err.Error(), `type="tuning"`) || !contains(err.Error(), "no_such_sysctl") {
		t.Errorf("error should name the plugin and its message: %v", err)
	}
	e.assertNothingLeft()
	if len(e.events("failed")) != 1 {
		t.Errorf("want 1 failed event, got %d", len(e.events("failed")))
	}
}

func TestBrokenConflistLeavesNothing(t *testing.T) {
	e := newEnv(t, 8, false)
	// Valid JSON, but host-local rejects the subnet.
	bad := e.conflist(nil)
	bad = []byte(replace(string(bad), e.subnet, "10.213.8.0/33"))
	e.writeConf("10-test.conflist", bad)
	_, err := e.setup("broken", nil)
	if err == nil || !contains(err.Error(), `type="bridge"`) {
		t.Fatalf("want an error naming the bridge plugin, got %v", err)
	}
	e.assertNothingLeft()

	// Not JSON at all: not ready, SetupPod refused before anything is made.
	e.writeConf("10-test.conflist", []byte("{not json"))
	st, _ := e.svc.Status(context.Background(), &netv1.StatusRequest{})
	if st.GetReady() || st.GetReason() != "InvalidCNIConfig" || !contains(st.GetMessage(), "10-test.conflist") {
		t.Fatalf("Status with a broken conflist: %v", st)
	}
	if _, err := e.setup("broken2", nil); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("want FailedPrecondition, got %v", err)
	}
	e.assertNothingLeft()
}

func TestReadinessFollowsConfDir(t *testing.T) {
	e := newEnv(t, 9, false)
	ctx := context.Background()
	st, _ := e.svc.Status(ctx, &netv1.StatusRequest{})
	if st.GetReady() || st.GetReason() != "NoCNIConfig" {
		t.Fatalf("empty conf dir: %v", st)
	}
	if _, err := e.setup("early", nil); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("SetupPod before a conflist: want FailedPrecondition, got %v", err)
	}
	e.writeConf("20-missing.conflist", []byte(`{"cniVersion":"1.0.0","name":"m","plugins":[{"type":"no-such-plugin"}]}`))
	st, _ = e.svc.Status(ctx, &netv1.StatusRequest{})
	if st.GetReady() || st.GetReason() != "CNIPluginNotFound" {
		t.Fatalf("conflist with a missing plugin: %v", st)
	}
	e.writeConf("10-test.conflist", e.conflist(nil))
	st, _ = e.svc.Status(ctx, &netv1.StatusRequest{})
	if !st.GetReady() || st.GetNetwork() != e.netName {
		t.Fatalf("after writing a conflist: %v", st)
	}
	if len(e.events("config_changed")) < 2 {
		t.Errorf("want config_changed events, got %d", len(e.events("config_changed")))
	}
	e.mustSetup("late", nil)
	if err := os.Remove(e.cfg.ConfDir + "/10-test.conflist"); err != nil {
		t.Fatal(err)
	}
	st, _ = e.svc.Status(ctx, &netv1.StatusRequest{})
	if st.GetReady() {
		t.Fatalf("still ready after the conflist was removed: %v", st)
	}
	// Teardown uses the conflist the pod was set up with.
	e.teardown("late")
	e.assertNothingLeft()
}

func TestBandwidthAnnotationsShapeTraffic(t *testing.T) {
	e := newEnv(t, 10, true)
	e.mustSetup("bw", func(r *netv1.SetupPodRequest) {
		r.Annotations = map[string]string{"kubernetes.io/ingress-bandwidth": "10M", "kubernetes.io/egress-bandwidth": "1M"}
	})
	ports := e.bridgePorts()
	if len(ports) != 1 {
		t.Fatalf("want one veth, got %v", ports)
	}
	l, err := netlink.LinkByName(ports[0])
	if err != nil {
		t.Fatal(err)
	}
	qs, err := netlink.QdiscList(l)
	if err != nil {
		t.Fatal(err)
	}
	var tbf *netlink.Tbf
	for _, q := range qs {
		if x, ok := q.(*netlink.Tbf); ok {
			tbf = x
		}
	}
	if tbf == nil || tbf.Rate != 10_000_000/8 {
		t.Fatalf("want a tbf of 10 Mbit/s on %s, got %v", ports[0], qs)
	}
	e.teardown("bw")
	e.assertNothingLeft()
}

func replace(s, old, new string) string {
	out := ""
	for {
		i := indexOf(s, old)
		if i < 0 {
			return out + s
		}
		out, s = out+s[:i]+new, s[i+len(old):]
	}
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestDualStackIPv4First(t *testing.T) {
	e := newEnv(t, 11, false)
	e.subnets = []string{"fd00:213:11::/64", e.subnet} // IPv6 listed first on purpose
	e.writeConf("10-test.conflist", e.conflist(nil))
	p := e.mustSetup("dual", nil)
	ips := p.GetIps()
	if len(ips) != 2 || net.ParseIP(ips[0]).To4() == nil || net.ParseIP(ips[1]).To4() != nil {
		t.Fatalf("want [IPv4 IPv6], got %v", ips)
	}
	e.teardown("dual")
	e.assertNothingLeft()
}

func TestConcurrentSetups(t *testing.T) {
	e := newEnv(t, 12, true)
	const n = 6
	errc := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			_, err := e.setup(fmt.Sprintf("par%d", i), nil)
			errc <- err
		}(i)
	}
	for i := 0; i < n; i++ {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	if got := len(e.allocatedIPs()); got != n {
		t.Fatalf("want %d distinct IPs, got %d", n, got)
	}
	for i := 0; i < n; i++ {
		e.teardown(fmt.Sprintf("par%d", i))
	}
	e.assertNothingLeft()
}

func TestCheckPodDetectsBrokenNetworkAndArgsReachPlugins(t *testing.T) {
	e := newEnv(t, 13, true)
	e.mustSetup("chk", func(r *netv1.SetupPodRequest) { r.Name, r.Namespace, r.Uid = "web", "shop", "uid-42" })
	// libcni records what every plugin was called with.
	cached, err := filepath.Glob(e.cfg.Root + "/cni-cache/results/*chk*")
	if err != nil || len(cached) != 1 {
		t.Fatalf("libcni cache under root: %v, %v", cached, err)
	}
	b, _ := os.ReadFile(cached[0])
	for _, want := range []string{`"K8S_POD_NAME","web"`, `"K8S_POD_NAMESPACE","shop"`, `"K8S_POD_UID","uid-42"`, `"K8S_POD_INFRA_CONTAINER_ID","chk"`} {
		if !contains(string(b), want) {
			t.Errorf("CNI args lack %s: %s", want, b)
		}
	}
	ctx := context.Background()
	if _, err := e.svc.CheckPod(ctx, &netv1.CheckPodRequest{PodId: "chk"}); err != nil {
		t.Fatalf("CheckPod of a healthy pod: %v", err)
	}
	ports := e.bridgePorts()
	if len(ports) != 1 {
		t.Fatalf("want one veth: %v", ports)
	}
	l, _ := netlink.LinkByName(ports[0])
	if err := netlink.LinkDel(l); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.CheckPod(ctx, &netv1.CheckPodRequest{PodId: "chk"})
	if err == nil || !contains(err.Error(), "eth0") {
		t.Fatalf("CheckPod after the veth was deleted: want an error about eth0, got %v", err)
	}
	if _, err := e.svc.CheckPod(ctx, &netv1.CheckPodRequest{PodId: "nope"}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("CheckPod of an unknown pod: want NotFound, got %v", err)
	}
	e.teardown("chk")
	e.assertNothingLeft()
}

// A netd killed in the middle of ADD leaves a record in the creating phase,
// no libcni cache entry and the partial result of the plugins that ran; the
// next start undoes all of it (namespace, IP, firewall rules).
func TestInterruptedSetupUndoneAtStart(t *testing.T) {
	e := newEnv(t, 14, true)
	e.mustSetup("cut", nil)
	rec, err := e.svc.store.Get("cut")
	if err != nil {
		t.Fatal(err)
	}
	rec.Phase = store.Creating
	if err := e.svc.store.Put(rec); err != nil {
		t.Fatal(err)
	}
	cached, _ := filepath.Glob(e.cfg.Root + "/cni-cache/results/*cut*")
	if len(cached) != 1 {
		t.Fatalf("libcni cache: %v", cached)
	}
	b, _ := os.ReadFile(cached[0])
	var c struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(b, &c); err != nil || len(c.Result) == 0 {
		t.Fatalf("cache entry: %v", err)
	}
	if err := os.Remove(cached[0]); err != nil {
		t.Fatal(err)
	}
	partial := e.cfg.RunRoot + "/netd/cni-partial"
	if err := os.MkdirAll(partial, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(partial+"/cut.json", c.Result, 0o600); err != nil {
		t.Fatal(err)
	}
	e.restart()
	e.assertNothingLeft()
	if _, err := os.Stat(partial + "/cut.json"); !os.IsNotExist(err) {
		t.Errorf("partial result left: %v", err)
	}
}

func TestStalePinWithoutRecordIsReplaced(t *testing.T) {
	e := newEnv(t, 16, true)
	stale := e.svc.netnsPath("again")
	if err := netns.Create(stale); err != nil {
		t.Fatal(err)
	}
	p := e.mustSetup("again", nil)
	if p.GetNetnsPath() != stale || !netns.IsPinned(stale) {
		t.Fatalf("setup over a stale pin: %v", p)
	}
	e.teardown("again")
	e.assertNothingLeft()
}

// A pod whose record was lost (deleted by hand) is still known to libcni's
// cache: the start-up GC runs DEL for it, releasing its IP and veth.
func TestStartGCReleasesAttachmentsWithoutRecord(t *testing.T) {
	e := newEnv(t, 17, true)
	keep := e.mustSetup("keep", nil)
	e.mustSetup("lost", nil)
	if err := e.svc.store.Delete("lost"); err != nil {
		t.Fatal(err)
	}
	e.restart()
	if ips := e.allocatedIPs(); len(ips) != 1 || ips[0] != keep.GetIps()[0] {
		t.Fatalf("after start-up GC want only %s allocated, got %v", keep.GetIps()[0], ips)
	}
	if v := e.bridgePorts(); len(v) != 1 {
		t.Fatalf("want only keep's veth, got %v", v)
	}
	e.teardown("keep")
	e.assertNothingLeft()
}

// The Creating record is written side by side with the namespace: when it
// cannot be written, SetupPod fails and leaves no namespace behind.
func TestUnwritableRecordLeavesNothing(t *testing.T) {
	e := newEnv(t, 15, true)
	// Records can be read (there are none) but not written.
	if err := e.svc.store.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.setup("nowrite", nil); err == nil || !contains(err.Error(), "write record nowrite") {
		t.Fatalf("SetupPod without a writable record: %v", err)
	}
	e.assertNothingLeft()
	e.restart()
	e.mustSetup("nowrite", nil)
	e.teardown("nowrite")
	e.assertNothingLeft()
}
