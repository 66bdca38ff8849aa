package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"flotilla.dev/ctl/fleet"
	"flotilla.dev/lib/testutil/registry"
	"flotilla.dev/test/e2e/framework"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const busybox = "registry.k8s.io/e2e-test-images/busybox:1.29-2"

// startImageFleet starts a local registry with the given test images and a
// fleet whose imaged pulls from it; it waits for NetworkReady too.
func startImageFleet(t *testing.T, images ...string) (*framework.Fleet, *registry.Registry) {
	t.Helper()
	framework.RequireRoot(t)
	reg := registry.StartT(t, registry.Options{Images: images})
	f := framework.StartFleet(t, framework.Options{WaitNetwork: true, Options: fleet.Options{
		Restart: true, RegistriesConf: reg.RegistriesConf, SignaturePolicy: reg.PolicyJSON}})
	return f, reg
}

func pull(t *testing.T, f *framework.Fleet, image string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := f.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: image}})
	if err != nil {
		t.Fatalf("pull %s: %v", image, err)
	}
	return resp.ImageRef
}

func podConfig(name, logDir string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "e2e", Uid: name + "-uid", Attempt: 0},
		Hostname:     name,
		LogDirectory: logDir,
		Labels:       map[string]string{"app": name},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
}

func runPod(t *testing.T, f *framework.Fleet, name string) (string, *runtimeapi.PodSandboxConfig) {
	t.Helper()
	logDir := filepath.Join(f.Layout.Root, "pod-logs", name)
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := podConfig(name, logDir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := f.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	return resp.PodSandboxId, cfg
}

func startContainer(t *testing.T, f *framework.Fleet, podID string, pod *runtimeapi.PodSandboxConfig, name string, cmd ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cresp, err := f.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: podID, SandboxConfig: pod,
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: name},
			Image:    &runtimeapi.ImageSpec{Image: busybox},
			Command:  cmd,
			LogPath:  name + ".log",
		},
	})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if _, err := f.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cresp.ContainerId}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	return cresp.ContainerId
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The kubelet's flow through criproxy: pull, run a pod, create and start a
// container, exec, read its CRI log, stop, remove — with a pod IP from
// netd, and idempotent stop/remove at the end.
func TestPodLifecycleThroughCriproxy(t *testing.T) {
	f, _ := startImageFleet(t, "busybox", "pause-3.10")
	ref := pull(t, f, busybox)
	podID, pod := runPod(t, f, "lifecycle")
	ctx := context.Background()

	ps, err := f.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatal(err)
	}
	if ps.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || ps.Status.GetNetwork().GetIp() == "" {
		t.Fatalf("pod status %v: want READY with an IP", ps.Status)
	}

	cid := startContainer(t, f, podID, pod, "ticker", "sh", "-c", "echo hello; while true; do echo tick; sleep 0.1; done")
	st, err := f.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cid})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING || st.Status.ImageId != ref || st.Status.ImageRef != ref {
		t.Fatalf("container status %v: want RUNNING with image_id %s (PullImage's image_ref)", st.Status, ref)
	}
	ex, err := f.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"echo", "hi"}, Timeout: 10})
	if err != nil || string(ex.Stdout) != "hi\n" || ex.ExitCode != 0 {
		t.Fatalf("ExecSync: %v %q %d", err, ex.GetStdout(), ex.GetExitCode())
	}
	logPath := st.Status.LogPath
	waitFor(t, "hello in the CRI log", 10*time.Second, func() bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), " stdout F hello\n")
	})
	out, err := f.Crictl("logs", "--tail", "5", cid)
	if err != nil || !strings.Contains(out, "tick") {
		t.Fatalf("crictl logs: %v\n%s", err, out)
	}

	if _, err := f.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: cid, Timeout: 2}); err != nil {
		t.Fatal(err)
	}
	st, err = f.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cid})
	if err != nil {
		t.Fatal(err)
	}
	if st.Status.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.Status.FinishedAt == 0 {
		t.Fatalf("after stop: %v", st.Status)
	}
	for i := 0; i < 2; i++ { // the second time everything is already gone
		if _, err := f.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: cid}); err != nil {
			t.Fatalf("RemoveContainer #%d: %v", i+1, err)
		}
		if _, err := f.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Fatalf("StopPodSandbox #%d: %v", i+1, err)
		}
		if _, err := f.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Fatalf("RemovePodSandbox #%d: %v", i+1, err)
		}
	}
	_, err = f.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cid})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("status of a removed container: want NotFound, got %v", err)
	}
}

// SIGKILL sandboxd while a container runs: the container keeps running and
// logging; the restarted sandboxd lists it RUNNING, execs in it, and
// records its exit.
func TestSandboxdKilledContainersKeepRunning(t *testing.T) {
	f, _ := startImageFleet(t, "busybox", "pause-3.10")
	pull(t, f, busybox)
	podID, pod := runPod(t, f, "survivor")
	cid := startContainer(t, f, podID, pod, "ticker", "sh", "-c", "while true; do echo tick; sleep 0.1; done")
	ctx := context.Background()
	st, err := f.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cid})
	if err != nil {
		t.Fatal(err)
	}
	logPath := st.Status.LogPath

	if err := f.Kill("sandboxd", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		fi, err := os.Stat(logPath)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	before := size()
	waitFor(t, "the log to grow while sandboxd is down", 5*time.Second, func() bool { return size() > before })

	waitFor(t, "sandboxd back", 30*time.Second, func() bool {
		st, err = f.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cid})
		return err == nil
	})
	if st.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("after sandboxd restart: %v", st.Status)
	}
	list, err := f.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil || len(list.Containers) != 1 || list.Containers[0].Id != cid {
		t.Fatalf("ListContainers after restart: %v %v", list, err)
	}
	ex, err := f.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"echo", "still here"}, Timeout: 10})
	if err != nil || string(ex.Stdout) != "still here\n" {
		t.Fatalf("ExecSync after restart: %v %q", err, ex.GetStdout())
	}
	if _, err := f.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: cid, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	st, err = f.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: cid})
	if err != nil || st.Status.State != runtimeapi.ContainerState_CONTAINER_EXITED {
		t.Fatalf("after stop: %v %v", st.GetStatus(), err)
	}
}

// GetContainerEvents through criproxy carries sandboxd's lifecycle events.
func TestContainerEventsThroughCriproxy(t *testing.T) {
	f, _ := startImageFleet(t, "busybox", "pause-3.10")
	pull(t, f, busybox)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream, err := f.Runtime.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	podID, pod := runPod(t, f, "events")
	cid := startContainer(t, f, podID, pod, "short", "true")
	seen := map[runtimeapi.ContainerEventType]bool{}
	for !(seen[runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT] && seen[runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT] &&
		seen[runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT]) {
		ev, err := stream.Recv()
		if err != nil {
			t.Fatalf("events so far %v: %v", seen, err)
		}
		if ev.ContainerId == cid {
			seen[ev.ContainerEventType] = true
		}
	}
}
