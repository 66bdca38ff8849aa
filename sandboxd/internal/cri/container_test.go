package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	eventsv1 "flotilla.dev/proto/events/v1"
	"flotilla.dev/sandboxd/internal/oci"
	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func ctrConfig(name string, cmd ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: "busybox"},
		Command:  cmd,
		LogPath:  name + ".log",
		Labels:   map[string]string{"ctr": name},
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}}},
	}
}

// podWithLogs runs a pod whose containers log under a temp directory.
func (e *env) podWithLogs(name string) (string, *runtimeapi.PodSandboxConfig) {
	cfg := podConfig(name)
	cfg.LogDirectory = filepath.Join(e.t.TempDir(), "logs")
	return e.runPod(cfg), cfg
}

func (e *env) create(podID string, pcfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	e.t.Helper()
	resp, err := e.svc.CreateContainer(context.Background(), &runtimeapi.CreateContainerRequest{PodSandboxId: podID, Config: cfg, SandboxConfig: pcfg})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.ContainerId
}

func (e *env) startCtr(id string) {
	e.t.Helper()
	if _, err := e.svc.StartContainer(context.Background(), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) execSync(id string, cmd ...string) (string, int32) {
	e.t.Helper()
	resp, err := e.svc.ExecSync(context.Background(), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 20})
	if err != nil {
		e.t.Fatalf("exec %v: %v", cmd, err)
	}
	return strings.TrimSpace(string(resp.Stdout)), resp.ExitCode
}

// waitExit blocks until the container's exit is recorded.
func (e *env) waitExit(id string) *runtimeapi.ContainerStatus {
	e.t.Helper()
	c, err := e.svc.lookupContainer(id)
	if err != nil {
		e.t.Fatal(err)
	}
	select {
	case <-c.exit:
	case <-time.After(time.Minute):
		e.t.Fatal("container did not exit within a minute")
	}
	st, err := e.svc.ContainerStatus(context.Background(), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Status
}

func (e *env) status(id string) *runtimeapi.ContainerStatus {
	e.t.Helper()
	st, err := e.svc.ContainerStatus(context.Background(), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Status
}

func TestContainerLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	podID, pcfg := e.podWithLogs("life")
	cfg := ctrConfig("main", "sh", "-c", "echo hello; echo oops >&2; exec sleep 1000")
	id := e.create(podID, pcfg, cfg)
	if st := e.status(id); st.State != runtimeapi.ContainerState_CONTAINER_CREATED || st.ImageRef != "sha256-of-busybox" {
		t.Fatalf("created: %v", st)
	}
	// A retried create returns the same container.
	if again := e.create(podID, pcfg, cfg); again != id {
		t.Fatalf("retried create made %s", again)
	}
	e.startCtr(id)
	if _, err := e.svc.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id}); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("second start: %v", err)
	}
	if st := e.status(id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING || st.StartedAt == 0 {
		t.Fatalf("running: %v", st)
	}
	if out, _ := e.execSync(id, "hostname"); out != "life-host" {
		t.Errorf("hostname %q", out)
	}
	if out, _ := e.execSync(id, "cat", "/etc/resolv.conf"); !strings.Contains(out, "nameserver 10.0.0.10") {
		t.Errorf("resolv.conf %q", out)
	}
	if _, code := e.execSync(id, "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("exec exit code %d", code)
	}
	// ExecSync's timeout kills the process and is reported.
	if _, err := e.svc.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sleep", "60"}, Timeout: 1}); err == nil {
		t.Error("exec timeout not reported")
	}
	list, _ := e.svc.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		PodSandboxId: podID, State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}}})
	if len(list.Containers) != 1 || list.Containers[0].Id != id {
		t.Fatalf("list %v", list.Containers)
	}
	stats, err := e.svc.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: id})
	if err != nil || stats.Stats.GetMemory().GetWorkingSetBytes().GetValue() == 0 {
		t.Errorf("stats %v %v", stats, err)
	}
	// This stand-in imaged cannot tell the writable layer's usage: the
	// stats come without it (TestRealImagesWithImaged has a real imaged).
	if wl := stats.GetStats().GetWritableLayer(); wl != nil {
		t.Errorf("writable layer %v from a stand-in without RootfsUsage", wl)
	}

	if _, err := e.svc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	st := e.waitExit(id)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.Reason != "Error" || st.ExitCode != 137 || st.FinishedAt == 0 {
		t.Fatalf("stopped: %v", st)
	}
	if _, err := e.svc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
		t.Fatal("stop of an exited container:", err)
	}
	logData, err := os.ReadFile(st.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logData), " stdout F hello\n") || !strings.Contains(string(logData), " stderr F oops\n") {
		t.Fatalf("log %q", logData)
	}
	for range 2 {
		if _, err := e.svc.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("status after remove: %v", err)
	}
	var ctrEvents []string
	for _, ev := range e.bus.Published {
		if c := ev.GetContainer(); c != nil {
			ctrEvents = append(ctrEvents, c.State)
			if len(c.CriEvent) == 0 {
				t.Errorf("%s event without cri_event", ev.Subject)
			}
		}
	}
	if got := strings.Join(ctrEvents, ","); got != "created,started,exited,removed" {
		t.Fatalf("container events %s", got)
	}
}

func TestContainerExitCodes(t *testing.T) {
	e := newEnv(t)
	podID, pcfg := e.podWithLogs("exits")
	ok := e.create(podID, pcfg, ctrConfig("ok", "true"))
	bad := e.create(podID, pcfg, ctrConfig("bad", "sh", "-c", "exit 3"))
	e.startCtr(ok)
	e.startCtr(bad)
	if st := e.waitExit(ok); st.ExitCode != 0 || st.Reason != "Completed" {
		t.Errorf("ok: %v", st)
	}
	if st := e.waitExit(bad); st.ExitCode != 3 || st.Reason != "Error" {
		t.Errorf("bad: %v", st)
	}
	var exited int
	for _, ev := range e.bus.Published {
		if ev.Subject == eventsv1.SubjectContainerExited {
			exited++
		}
	}
	if exited != 2 {
		t.Errorf("%d exited events", exited)
	}
}

func TestContainerOOMKilled(t *testing.T) {
	e := newEnv(t)
	podID, pcfg := e.podWithLogs("oom")
	cfg := ctrConfig("hog", "sh", "-c", "x=$(yes | head -c 200000000); echo survived")
	cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 16 << 20}
	id := e.create(podID, pcfg, cfg)
	e.startCtr(id)
	st := e.waitExit(id)
	if st.Reason != "OOMKilled" {
		t.Fatalf("over its memory limit: reason %q exit %d", st.Reason, st.ExitCode)
	}
	var oom bool
	for _, ev := range e.bus.Published {
		if ev.Subject == eventsv1.SubjectContainerOOM && ev.GetContainer().GetContainerId() == id && ev.GetContainer().GetReason() == "OOMKilled" {
			oom = true
		}
	}
	if !oom {
		t.Fatal("no OOM event published")
	}
}

func TestOOMScoreAdjClampedWithoutCapSysResource(t *testing.T) {
	e := newEnv(t)
	cur := hostOOMPolicy()
	if cur.CanLower {
		t.Skip("this host grants CAP_SYS_RESOURCE")
	}
	podID, pcfg := e.podWithLogs("oomadj")
	for _, tc := range []struct {
		name string
		want int64
		got  int
	}{
		{"negative", -998, cur.Current}, // clamped to ours
		{"positive", 500, 500},          // passes as asked
	} {
		cfg := ctrConfig(tc.name, "sleep", "1000")
		cfg.Linux.Resources = &runtimeapi.LinuxContainerResources{OomScoreAdj: tc.want}
		id := e.create(podID, pcfg, cfg)
		e.startCtr(id)
		out, _ := e.execSync(id, "cat", "/proc/1/oom_score_adj")
		if n, _ := strconv.Atoi(out); n != tc.got {
			t.Errorf("%s: oom_score_adj %q, want %d", tc.name, out, tc.got)
		}
	}
}

func TestUserAndCapabilities(t *testing.T) {
	e := newEnv(t)
	podID, pcfg := e.podWithLogs("users")
	cfg := ctrConfig("user", "sleep", "1000")
	cfg.Linux.SecurityContext.RunAsUsername = "www-data"
	cfg.Linux.SecurityContext.SupplementalGroups = []int64{1234}
	id := e.create(podID, pcfg, cfg)
	e.startCtr(id)
	if out, _ := e.execSync(id, "id", "-u"); out != "33" {
		t.Errorf("uid: %q", out)
	}
	if out, _ := e.execSync(id, "id", "-g"); out != "33" {
		t.Errorf("gid: %q", out)
	}
	if out, _ := e.execSync(id, "id", "-G"); !strings.Contains(out, "50000") || !strings.Contains(out, "1234") {
		t.Errorf("groups: %q", out)
	}
	if u := e.status(id).GetUser().GetLinux(); u.Uid != 33 || u.Gid != 33 || fmt.Sprint(u.SupplementalGroups) != "[33 50000 1234]" {
		t.Errorf("status user %v", u)
	}
	priv := ctrConfig("priv", "sleep", "1000")
	priv.Linux.SecurityContext.Privileged = true
	pid := e.create(podID, pcfg, priv)
	e.startCtr(pid)
	bnd, _ := oci.BoundingSet()
	out, _ := e.execSync(pid, "grep", "CapEff", "/proc/self/status")
	if !strings.Contains(out, fmt.Sprintf("%016x", maskOf(bnd))) {
		t.Errorf("privileged CapEff %q, want the runtime's bounding set %x", out, maskOf(bnd))
	}
}

func maskOf(c oci.CapSet) uint64 {
	var m uint64
	for i := 0; i < 64; i++ {
		if set := oci.FromMask(1 << uint(i)); len(set) == 1 && c.Has(set[0]) {
			m |= 1 << uint(i)
		}
	}
	return m
}

func TestContainersSurviveRestart(t *testing.T) {
	e := newEnv(t)
	podID, pcfg := e.podWithLogs("restart")
	running := e.create(podID, pcfg, ctrConfig("runs", "sh", "-c", "while true; do echo tick; sleep 0.1; done"))
	e.startCtr(running)
	dies := e.create(podID, pcfg, ctrConfig("dies", "sleep", "1000"))
	e.startCtr(dies)
	diesPid := e.svc.ctrs[dies].snapshot().Pid

	e.stop() // sandboxd goes away; shims stay
	// While sandboxd is down, one container exits.
	if err := killPid(int(diesPid)); err != nil {
		t.Fatal(err)
	}
	e.start()

	if st := e.status(running); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("running container after restart: %v", st.State)
	}
	if out, _ := e.execSync(running, "echo", "still here"); out != "still here" {
		t.Fatalf("exec after restart: %q", out)
	}
	st := e.waitExit(dies)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 137 {
		t.Fatalf("container that died while sandboxd was down: %v", st)
	}
	// Logs kept flowing across the restart.
	before, _ := os.ReadFile(e.status(running).LogPath)
	e.execSync(running, "sleep", "0.5")
	after, _ := os.ReadFile(e.status(running).LogPath)
	if len(after) <= len(before) {
		t.Fatal("log stopped growing after the restart")
	}
}

func TestSharedPIDNamespacePod(t *testing.T) {
	e := newEnv(t)
	cfg := podConfig("sharedpid")
	cfg.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	cfg.LogDirectory = t.TempDir()
	resp, err := e.svc.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	podID := resp.PodSandboxId
	infra := e.svc.pods[podID].snapshot().InfraID
	if infra == "" {
		t.Fatal("no pause container for a shared PID namespace")
	}
	c := ctrConfig("app", "sleep", "1000")
	c.Linux.SecurityContext.NamespaceOptions.Pid = runtimeapi.NamespaceMode_POD
	id := e.create(podID, cfg, c)
	e.startCtr(id)
	// PID 1 is the pause process, not ours.
	if out, _ := e.execSync(id, "cat", "/proc/1/cmdline"); !strings.Contains(out, "1000000") {
		t.Fatalf("pid 1 cmdline %q", out)
	}
	list, _ := e.svc.ListContainers(context.Background(), &runtimeapi.ListContainersRequest{})
	if len(list.Containers) != 1 {
		t.Fatalf("the pause container is listed: %v", list.Containers)
	}
}

// TestShimGoneAfterRestart: a container exits, its shim dies while
// sandboxd is down; the restarted sandboxd reads the exit file, and
// removing the container still cleans the runtime's state.
func TestShimGoneAfterRestart(t *testing.T) {
	e := newEnv(t)
	podID, pcfg := e.podWithLogs("shimgone")
	id := e.create(podID, pcfg, ctrConfig("quick", "sh", "-c", "exit 6"))
	e.startCtr(id)
	if st := e.waitExit(id); st.ExitCode != 6 {
		t.Fatalf("exit %d", st.ExitCode)
	}
	shimPid, err := e.svc.ctrs[id].shim.(interface{ ShimPid() (int, error) }).ShimPid()
	if err != nil {
		t.Fatal(err)
	}
	e.stop()
	if err := killPid(shimPid); err != nil {
		t.Fatal(err)
	}
	e.start()
	if st := e.status(id); st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 6 {
		t.Fatalf("after restart: %v exit %d", st.State, st.ExitCode)
	}
	if _, err := e.svc.RemoveContainer(context.Background(), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	rt, _ := e.cfg.Runtime("")
	if out, _ := exec.Command(rt.Path, "--root", rt.Root, "list", "-q").Output(); strings.TrimSpace(string(out)) != "" {
		t.Fatalf("runtime still knows %q", out)
	}
}

// The layers of image volumes are told from containers' own by their ids,
// so reconciliation keeps those of known containers and removes the rest.
func TestVolumeOwner(t *testing.T) {
	id := strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		volumeRootfsID(id, 0): id, volumeRootfsID(id, 12): id,
		id: "", id + "-v": "", id + "-vx": "", id + "-v01": "", id + "-v-1": "", "-v0": "",
	} {
		if got := volumeOwner(in); got != want {
			t.Errorf("volumeOwner(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckImageVolumes(t *testing.T) {
	img := &runtimeapi.ImageSpec{Image: "busybox"}
	ok := []*runtimeapi.Mount{
		{ContainerPath: "/data", HostPath: "/srv"},
		{ContainerPath: "/img", Readonly: true, Image: img},
		{ContainerPath: "/etc2", Readonly: true, Image: img, ImageSubPath: "etc"},
		{ContainerPath: "/deep", Readonly: true, Image: img, ImageSubPath: "usr/share/..x/y"},
	}
	if err := checkImageVolumes(ok); err != nil {
		t.Errorf("valid mounts refused: %v", err)
	}
	for _, m := range []*runtimeapi.Mount{
		{ContainerPath: "/img", Image: img},
		{ContainerPath: "/img", Readonly: true, Image: img, HostPath: "/srv"},
		{ContainerPath: "img", Readonly: true, Image: img},
		{ContainerPath: "/img", Readonly: true, Image: img, ImageSubPath: "/etc"},
		{ContainerPath: "/img", Readonly: true, Image: img, ImageSubPath: ".."},
		{ContainerPath: "/img", Readonly: true, Image: img, ImageSubPath: "../etc"},
		{ContainerPath: "/img", Readonly: true, Image: img, ImageSubPath: "etc/../../x"},
		{ContainerPath: "/img", Readonly: true, Image: img, ImageSubPath: "etc/.."},
		{ContainerPath: "/data", HostPath: "/srv", ImageSubPath: "etc"},
	} {
		if err := checkImageVolumes([]*runtimeapi.Mount{m}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%v: %v, want invalid argument", m, err)
		}
	}
}
