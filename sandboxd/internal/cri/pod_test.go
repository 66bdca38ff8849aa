package cri

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	eventsv1 "flotilla.dev/proto/events/v1"
	imagev1 "flotilla.dev/proto/image/v1"
	netv1 "flotilla.dev/proto/net/v1"
	"flotilla.dev/sandboxd/internal/nsutil"
	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func podConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:  &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: name + "-uid"},
		Hostname:  name + "-host",
		Labels:    map[string]string{"app": name},
		DnsConfig: &runtimeapi.DNSConfig{Servers: []string{"10.0.0.10"}, Searches: []string{"svc.cluster.local"}, Options: []string{"ndots:5"}},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: "/flotilla-test",
			Sysctls:      map[string]string{"kernel.shmmax": "100000000"},
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
				Pid: runtimeapi.NamespaceMode_CONTAINER}},
		},
	}
}

func (e *env) runPod(cfg *runtimeapi.PodSandboxConfig) string {
	e.t.Helper()
	resp, err := e.svc.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.PodSandboxId
}

func subjects(e *env) []string {
	var out []string
	for _, ev := range e.bus.Published {
		out = append(out, ev.Subject)
	}
	return out
}

func TestPodLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	id := e.runPod(podConfig("web"))

	st, err := e.svc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.Status.Network.Ip != "10.99.0.2" || st.Timestamp == 0 {
		t.Fatalf("status %v", st.Status)
	}
	rec := e.svc.pods[id].snapshot()
	// IPC and UTS are pinned without a process; the hostname is set in UTS.
	if !nsutil.IsPinned(rec.IPCNS, nsutil.IPC) || !nsutil.IsPinned(rec.UTSNS, nsutil.UTS) {
		t.Fatalf("namespaces not pinned: %+v", rec)
	}
	out, err := exec.Command("nsenter", "--uts="+rec.UTSNS, "hostname").Output()
	if err != nil || strings.TrimSpace(string(out)) != "web-host" {
		t.Fatalf("hostname %q %v", out, err)
	}
	resolv, _ := os.ReadFile(filepath.Join(rec.Dir, "resolv.conf"))
	if string(resolv) != "nameserver 10.0.0.10\nsearch svc.cluster.local\noptions ndots:5\n" {
		t.Fatalf("resolv.conf %q", resolv)
	}
	hosts, _ := os.ReadFile(filepath.Join(rec.Dir, "hosts"))
	if !strings.Contains(string(hosts), "10.99.0.2\tweb-host") {
		t.Fatalf("hosts %q", hosts)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); !strings.Contains(string(mi), rec.ShmPath+" ") {
		t.Fatal("/dev/shm of the pod not mounted")
	}

	list, _ := e.svc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "web"}}})
	if len(list.Items) != 1 || list.Items[0].Id != id {
		t.Fatalf("list %v", list.Items)
	}
	list, _ = e.svc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "other"}}})
	if len(list.Items) != 0 {
		t.Fatalf("label filter: %v", list.Items)
	}

	for range 2 { // stop is idempotent
		if _, err := e.svc.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatal(err)
		}
	}
	st, _ = e.svc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("after stop: %v", st.Status.State)
	}
	if e.net.held() != 0 || nsutil.IsPinned(rec.UTSNS, nsutil.UTS) {
		t.Fatal("stop left the network or namespaces")
	}
	for range 2 { // remove is idempotent
		if _, err := e.svc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("status after remove: %v", err)
	}
	if _, err := os.Stat(rec.Dir); !os.IsNotExist(err) {
		t.Fatal("pod dir left")
	}
	want := []string{eventsv1.SubjectPodCreated, eventsv1.SubjectPodStarted, eventsv1.SubjectPodStopped, eventsv1.SubjectPodRemoved}
	if got := subjects(e); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", got, want)
	}
}

func TestPodNameReservationAndRetry(t *testing.T) {
	e := newEnv(t)
	cfg := podConfig("retry")
	id1 := e.runPod(cfg)
	// A kubelet retry of the same request returns the same pod.
	if id2 := e.runPod(cfg); id2 != id1 {
		t.Fatalf("retry made a second pod %s", id2)
	}
	// The same name with a different config is refused and changes nothing.
	other := podConfig("retry")
	other.Hostname = "different"
	_, err := e.svc.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: other})
	if !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("conflicting name: %v", err)
	}
	if n := len(e.svc.listPods(nil)); n != 1 {
		t.Fatalf("%d pods", n)
	}
	// After a restart, the retry still finds the pod.
	e.stop()
	e.start()
	if id3 := e.runPod(cfg); id3 != id1 {
		t.Fatalf("retry after restart made %s", id3)
	}
	// After removal the name is free again.
	e.svc.RemovePodSandbox(context.Background(), &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id1})
	if id4 := e.runPod(other); id4 == id1 {
		t.Fatal("reused id")
	}
}

func TestPodBadInputChangesNothing(t *testing.T) {
	e := newEnv(t)
	bad := map[string]func(*runtimeapi.RunPodSandboxRequest){
		"no metadata":     func(r *runtimeapi.RunPodSandboxRequest) { r.Config.Metadata = nil },
		"unknown handler": func(r *runtimeapi.RunPodSandboxRequest) { r.RuntimeHandler = "nope" },
		"systemd slice":   func(r *runtimeapi.RunPodSandboxRequest) { r.Config.Linux.CgroupParent = "kubepods.slice" },
		"escaping cgroup": func(r *runtimeapi.RunPodSandboxRequest) { r.Config.Linux.CgroupParent = "/../../x" },
		"host sysctl": func(r *runtimeapi.RunPodSandboxRequest) {
			r.Config.Linux.Sysctls = map[string]string{"kernel.panic": "1"}
		},
		"bad dns":          func(r *runtimeapi.RunPodSandboxRequest) { r.Config.DnsConfig.Servers = []string{"1.1.1.1\nevil"} },
		"relative log dir": func(r *runtimeapi.RunPodSandboxRequest) { r.Config.LogDirectory = "logs" },
		"net sysctl hostnet": func(r *runtimeapi.RunPodSandboxRequest) {
			r.Config.Linux.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
			r.Config.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
		},
	}
	for name, mut := range bad {
		req := &runtimeapi.RunPodSandboxRequest{Config: podConfig("bad")}
		mut(req)
		if _, err := e.svc.RunPodSandbox(context.Background(), req); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: got %v, want InvalidArgument", name, err)
		}
	}
	if len(e.svc.listPods(nil)) != 0 || len(e.bus.Published) != 0 {
		t.Fatal("bad input changed something")
	}
	if ents, _ := os.ReadDir(filepath.Join(e.cfg.RunRoot, "pods")); len(ents) != 0 {
		t.Fatalf("left %v", ents)
	}
}

func TestHostNamespacesPod(t *testing.T) {
	e := newEnv(t)
	cfg := podConfig("hostns")
	cfg.Linux.Sysctls = nil
	cfg.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
	cfg.Linux.SecurityContext.NamespaceOptions.Ipc = runtimeapi.NamespaceMode_NODE
	id := e.runPod(cfg)
	rec := e.svc.pods[id].snapshot()
	if rec.NetNS != "" || rec.IPCNS != "" || rec.UTSNS != "" || rec.ShmPath != "" || e.net.held() != 0 {
		t.Fatalf("host namespaces pod holds its own: %+v", rec)
	}
}

func TestPodRecordsSurviveRestart(t *testing.T) {
	e := newEnv(t)
	ready := e.runPod(podConfig("a"))
	stopped := e.runPod(podConfig("b"))
	e.svc.StopPodSandbox(context.Background(), &runtimeapi.StopPodSandboxRequest{PodSandboxId: stopped})
	e.stop()
	e.start()
	got := map[string]runtimeapi.PodSandboxState{}
	for _, p := range e.svc.listPods(nil) {
		got[p.Id] = p.State
	}
	if len(got) != 2 || got[ready] != runtimeapi.PodSandboxState_SANDBOX_READY || got[stopped] != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Fatalf("after restart: %v", got)
	}
}

func TestReconcileRemovesOrphans(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// What a crash in the middle of a create leaves: a pod dir with pinned
	// namespaces and a network, a rootfs and a bundle, and no records.
	orphanPod := "0rphan" + strings.Repeat("0", 58)
	dir := filepath.Join(e.cfg.RunRoot, "pods", orphanPod)
	paths, err := nsutil.Pin(filepath.Join(dir, "ns"), "x", nsutil.IPC, nsutil.UTS)
	if err != nil {
		t.Fatal(err)
	}
	if err := nsutil.MountShm(filepath.Join(dir, "shm"), 1<<20); err != nil {
		t.Fatal(err)
	}
	e.net.SetupPod(ctx, &netv1.SetupPodRequest{PodId: orphanPod})
	orphanCtr := "0rphanc" + strings.Repeat("0", 57)
	e.rootfs.CreateRootfs(ctx, &imagev1.CreateRootfsRequest{ContainerId: orphanCtr, Image: "busybox"})
	os.MkdirAll(filepath.Join(e.cfg.RunRoot, "containers", orphanCtr), 0o700)
	// And a live pod that must stay.
	live := e.runPod(podConfig("live"))

	e.svc.reconcile(ctx)
	if nsutil.IsPinned(paths[nsutil.UTS], nsutil.UTS) || e.net.held() != 1 || e.rootfs.count() != 0 {
		t.Fatalf("orphans left: pinned %v, networks %d, rootfs %d", nsutil.IsPinned(paths[nsutil.UTS], nsutil.UTS), e.net.held(), e.rootfs.count())
	}
	for _, p := range []string{dir, filepath.Join(e.cfg.RunRoot, "containers", orphanCtr)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s left", p)
		}
	}
	if _, err := e.svc.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: live}); err != nil {
		t.Fatal("live pod touched:", err)
	}
}

func TestPodWithoutHostnameTakesTheNodes(t *testing.T) {
	e := newEnv(t)
	cfg := podConfig(strings.Repeat("long-pod-name-", 6)) // longer than a hostname may be
	cfg.Hostname = ""
	id := e.runPod(cfg)
	node, _ := os.Hostname()
	out, err := exec.Command("nsenter", "--uts="+e.svc.pods[id].snapshot().UTSNS, "hostname").Output()
	if err != nil || strings.TrimSpace(string(out)) != node {
		t.Fatalf("hostname %q %v, want %q", out, err, node)
	}
}
