package cri

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"flotilla.dev/lib/bus"
	"flotilla.dev/lib/daemon"
	flog "flotilla.dev/lib/log"
	eventsv1 "flotilla.dev/proto/events/v1"
	imagev1 "flotilla.dev/proto/image/v1"
	netv1 "flotilla.dev/proto/net/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// rootfsServer and netServer serve the test stand-ins for imaged and netd
// on unix sockets, for the sandboxd binary.
type rootfsServer struct {
	imagev1.UnimplementedRootfsServiceServer
	r *testRootfs
}

func (s rootfsServer) CreateRootfs(ctx context.Context, r *imagev1.CreateRootfsRequest) (*imagev1.CreateRootfsResponse, error) {
	return s.r.CreateRootfs(ctx, r)
}
func (s rootfsServer) MountRootfs(ctx context.Context, r *imagev1.MountRootfsRequest) (*imagev1.MountRootfsResponse, error) {
	return s.r.MountRootfs(ctx, r)
}
func (s rootfsServer) RemoveRootfs(ctx context.Context, r *imagev1.RemoveRootfsRequest) (*imagev1.RemoveRootfsResponse, error) {
	return s.r.RemoveRootfs(ctx, r)
}
func (s rootfsServer) ListRootfs(ctx context.Context, r *imagev1.ListRootfsRequest) (*imagev1.ListRootfsResponse, error) {
	return s.r.ListRootfs(ctx, r)
}

type netServer struct {
	netv1.UnimplementedNetServiceServer
	n *testNet
}

func (s netServer) SetupPod(ctx context.Context, r *netv1.SetupPodRequest) (*netv1.SetupPodResponse, error) {
	return s.n.SetupPod(ctx, r)
}
func (s netServer) TeardownPod(ctx context.Context, r *netv1.TeardownPodRequest) (*netv1.TeardownPodResponse, error) {
	return s.n.TeardownPod(ctx, r)
}

func serveOn(t *testing.T, sock string, register func(*grpc.Server)) {
	srv, err := daemon.NewServer(sock, 0o600, flog.ServerOptions(slog.New(slog.NewTextHandler(io.Discard, nil)))...)
	if err != nil {
		t.Fatal(err)
	}
	register(srv.GRPC)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

var sandboxdOnce struct {
	sync.Once
	path string
	err  error
}

func sandboxdBinary(t *testing.T) string {
	sandboxdOnce.Do(func() {
		p := filepath.Join(filepath.Dir(shimBinary(t)), "sandboxd")
		out, err := exec.Command("go", "build", "-o", p, "flotilla.dev/sandboxd/cmd/sandboxd").CombinedOutput()
		if err != nil {
			sandboxdOnce.err = fmt.Errorf("build sandboxd: %v\n%s", err, out)
		}
		sandboxdOnce.path = p
	})
	if sandboxdOnce.err != nil {
		t.Fatal(sandboxdOnce.err)
	}
	return sandboxdOnce.path
}

// TestSandboxdSIGKILL kills the sandboxd process while a container runs:
// the container keeps running and logging, and a restarted sandboxd
// recovers it (and the exit of one that died meanwhile).
func TestSandboxdSIGKILL(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	nats, err := bus.StartEmbedded("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer nats.Shutdown()
	sub, err := bus.Connect(nats.ClientURL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var mu sync.Mutex
	var seen []string
	exited := make(chan string, 16)
	unsub, _ := sub.Subscribe(eventsv1.SubjectContainerAll, func(e *eventsv1.Envelope) {
		mu.Lock()
		seen = append(seen, e.Subject)
		mu.Unlock()
		if e.Subject == eventsv1.SubjectContainerExited {
			select {
			case exited <- e.GetContainer().GetContainerId():
			default:
			}
		}
	})
	defer unsub()

	tr := &testRootfs{dir: filepath.Join(dir, "rootfs"), live: map[string]bool{}, images: map[string]map[string]any{"busybox": busyboxImage}}
	tn := &testNet{dir: filepath.Join(dir, "net"), pods: map[string]string{}}
	imagedSock, netdSock := filepath.Join(dir, "imaged.sock"), filepath.Join(dir, "netd.sock")
	serveOn(t, imagedSock, func(s *grpc.Server) { imagev1.RegisterRootfsServiceServer(s, rootfsServer{r: tr}) })
	serveOn(t, netdSock, func(s *grpc.Server) { netv1.RegisterNetServiceServer(s, netServer{n: tn}) })

	sock := filepath.Join(dir, "sandboxd.sock")
	cfgFile := filepath.Join(dir, "flotilla.toml")
	os.WriteFile(cfgFile, []byte(fmt.Sprintf(`[sandboxd]
socket = %q
nats_url = %q
root = %q
run_root = %q
imaged_socket = %q
netd_socket = %q
shim_path = %q
`, sock, nats.ClientURL(), filepath.Join(dir, "root"), filepath.Join(dir, "run"), imagedSock, netdSock, shimBinary(t))), 0o600)
	bin := sandboxdBinary(t)
	var proc *exec.Cmd
	startSandboxd := func() {
		proc = exec.Command(bin, "--config", cfgFile)
		proc.Stdout, proc.Stderr = os.Stderr, os.Stderr
		if err := proc.Start(); err != nil {
			t.Fatal(err)
		}
	}
	startSandboxd()
	defer func() {
		if proc.ProcessState == nil {
			proc.Process.Signal(syscall.SIGTERM)
			proc.Wait()
		}
	}()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	ready := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := rt.Version(ctx, &runtimeapi.VersionRequest{}, grpc.WaitForReady(true)); err != nil {
			t.Fatal("sandboxd not serving:", err)
		}
	}
	ready()
	ctx := context.Background()

	pcfg := podConfig("crash")
	pcfg.LogDirectory = filepath.Join(dir, "logs")
	pod, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pcfg})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod.PodSandboxId})
		if tn.held() != 0 || tr.count() != 0 {
			t.Errorf("leaked: %d networks, %d rootfs", tn.held(), tr.count())
		}
	}()
	run := func(name string, cmd ...string) string {
		c, err := rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod.PodSandboxId, Config: ctrConfig(name, cmd...), SandboxConfig: pcfg})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
			t.Fatal(err)
		}
		return c.ContainerId
	}
	ticker := run("ticker", "sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.05; done")
	victim := run("victim", "sleep", "1000")
	status := func(id string) *runtimeapi.ContainerStatus {
		st, err := rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id})
		if err != nil {
			t.Fatal(err)
		}
		return st.Status
	}
	logPath := status(ticker).LogPath

	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	proc.Wait()
	// sandboxd is gone: the container keeps logging, one container dies.
	size := func() int64 { fi, _ := os.Stat(logPath); return fi.Size() }
	before := size()
	// Polls the file (nothing else can tell when the shim writes it).
	deadline := time.Now().Add(30 * time.Second)
	for size() <= before {
		if time.Now().After(deadline) {
			t.Fatal("the log stopped growing while sandboxd was dead")
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, err := exec.Command("runc", "--root", filepath.Join(dir, "run", "runtimes", "runc"), "kill", victim, "KILL").CombinedOutput()
	if err != nil {
		t.Fatalf("kill victim: %v %s", err, out)
	}

	startSandboxd()
	ready()
	if st := status(ticker); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("ticker after restart: %v", st.State)
	}
	ex, err := rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: ticker, Cmd: []string{"echo", "alive"}, Timeout: 10})
	if err != nil || strings.TrimSpace(string(ex.Stdout)) != "alive" {
		t.Fatalf("exec after restart: %v %v", ex, err)
	}
	// The restarted sandboxd finds the exit and publishes it.
	timeout := time.After(30 * time.Second)
	for id := ""; id != victim; {
		select {
		case id = <-exited:
		case <-timeout:
			t.Fatal("the victim's exit was not recovered")
		}
	}
	if st := status(victim); st.ExitCode != 137 || st.Reason != "Error" {
		t.Fatalf("victim: exit %d reason %q", st.ExitCode, st.Reason)
	}
	if _, err := rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pod.PodSandboxId}); err != nil {
		t.Fatal(err)
	}
	sub.Flush()
	mu.Lock()
	got := strings.Join(seen, " ")
	mu.Unlock()
	for _, want := range []string{eventsv1.SubjectContainerStarted, eventsv1.SubjectContainerExited} {
		if !strings.Contains(got, want) {
			t.Errorf("no %s event on NATS (got %s)", want, got)
		}
	}
}
