package cri

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"flotilla.dev/lib/bus"
	imagev1 "flotilla.dev/proto/image/v1"
	netv1 "flotilla.dev/proto/net/v1"
	"flotilla.dev/sandboxd/internal/config"
	"flotilla.dev/sandboxd/internal/nsutil"
	"flotilla.dev/sandboxd/internal/store"
	"flotilla.dev/shim/testbuild"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// testNet stands in for netd: a real, unconnected network namespace per pod.
type testNet struct {
	netv1.NetServiceClient
	dir  string
	mu   sync.Mutex
	pods map[string]string
}

func (n *testNet) SetupPod(_ context.Context, r *netv1.SetupPodRequest, _ ...grpc.CallOption) (*netv1.SetupPodResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p, ok := n.pods[r.PodId]; ok {
		return &netv1.SetupPodResponse{Network: &netv1.PodNetwork{PodId: r.PodId, NetnsPath: p}}, nil
	}
	paths, err := nsutil.Pin(filepath.Join(n.dir, r.PodId), "", nsutil.NET)
	if err != nil {
		return nil, err
	}
	n.pods[r.PodId] = paths[nsutil.NET]
	return &netv1.SetupPodResponse{Network: &netv1.PodNetwork{PodId: r.PodId, NetnsPath: paths[nsutil.NET], Ips: []string{"10.99.0.2"}}}, nil
}

func (n *testNet) TeardownPod(_ context.Context, r *netv1.TeardownPodRequest, _ ...grpc.CallOption) (*netv1.TeardownPodResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p, ok := n.pods[r.PodId]; ok {
		if err := nsutil.Unpin(p); err != nil {
			return nil, err
		}
		os.Remove(filepath.Dir(p))
		delete(n.pods, r.PodId)
	}
	return &netv1.TeardownPodResponse{}, nil
}

func (n *testNet) held() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.pods)
}

// testRootfs stands in for imaged: a busybox rootfs directory per container.
type testRootfs struct {
	imagev1.RootfsServiceClient
	dir    string
	images map[string]map[string]any // image name → OCI config "config" object
	mu     sync.Mutex
	live   map[string]bool
}

// RootfsUsage is what an imaged without it answers.
func (r *testRootfs) RootfsUsage(context.Context, *imagev1.RootfsUsageRequest, ...grpc.CallOption) (*imagev1.RootfsUsageResponse, error) {
	return nil, status.Error(codes.Unimplemented, "RootfsUsage")
}

func (r *testRootfs) CreateRootfs(_ context.Context, req *imagev1.CreateRootfsRequest, _ ...grpc.CallOption) (*imagev1.CreateRootfsResponse, error) {
	cfg, ok := r.images[req.Image]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "image %q not found", req.Image)
	}
	root := filepath.Join(r.dir, req.ContainerId)
	if err := makeBusyboxRootfs(root); err != nil {
		return nil, err
	}
	data, _ := json.Marshal(map[string]any{"config": cfg})
	r.mu.Lock()
	r.live[req.ContainerId] = true
	r.mu.Unlock()
	return &imagev1.CreateRootfsResponse{
		Rootfs: &imagev1.Rootfs{ContainerId: req.ContainerId},
		Image:  &imagev1.ImageInfo{Id: "sha256-of-" + req.Image, RepoDigests: []string{req.Image + "@sha256:0"}, ConfigJson: data},
	}, nil
}

func (r *testRootfs) MountRootfs(_ context.Context, req *imagev1.MountRootfsRequest, _ ...grpc.CallOption) (*imagev1.MountRootfsResponse, error) {
	return &imagev1.MountRootfsResponse{MountPoint: filepath.Join(r.dir, req.ContainerId)}, nil
}

func (r *testRootfs) RemoveRootfs(_ context.Context, req *imagev1.RemoveRootfsRequest, _ ...grpc.CallOption) (*imagev1.RemoveRootfsResponse, error) {
	r.mu.Lock()
	delete(r.live, req.ContainerId)
	r.mu.Unlock()
	return &imagev1.RemoveRootfsResponse{}, os.RemoveAll(filepath.Join(r.dir, req.ContainerId))
}

func (r *testRootfs) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.live)
}

// makeBusyboxRootfs copies the host's busybox and its libraries into root
// with applets as hard links and an /etc/passwd with www-data.
func makeBusyboxRootfs(root string) error {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return err
	}
	for _, d := range []string{"bin", "etc", "tmp", "proc", "sys", "dev", "lib", "lib64", "root"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := copyFile(bb, filepath.Join(root, "bin/busybox"), 0o755); err != nil {
		return err
	}
	out, err := exec.Command("ldd", bb).Output()
	if err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			for _, f := range strings.Fields(line) {
				if strings.HasPrefix(f, "/") {
					dst := filepath.Join(root, f)
					os.MkdirAll(filepath.Dir(dst), 0o755)
					if err := copyFile(f, dst, 0o755); err != nil {
						return err
					}
				}
			}
		}
	}
	for _, a := range []string{"sh", "sleep", "echo", "cat", "id", "ls", "hostname", "sh", "true", "false", "ps", "grep", "head", "yes", "dd", "env", "kill", "pwd", "httpd", "wget", "ip", "nc"} {
		dst := filepath.Join(root, "bin", a)
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		if err := os.Link(filepath.Join(root, "bin/busybox"), dst); err != nil {
			return err
		}
	}
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www:/var/www:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\nwww-data:x:33:\nextra:x:50000:www-data\n"), 0o644)
	return nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, mode)
}

type env struct {
	t      testing.TB
	svc    *Service
	cfg    *config.Config
	store  *store.Store
	bus    *bus.Mem
	net    *testNet
	rootfs *testRootfs
	up     bool
	// realNet, when set, is a real netd used instead of net.
	realNet netv1.NetServiceClient
	// realRootfs, when set, is a real imaged used instead of rootfs.
	realRootfs imagev1.RootfsServiceClient
	images     runtimeapi.ImageServiceClient
}

var busyboxImage = map[string]any{"Cmd": []string{"sh"}, "Env": []string{"PATH=/bin"}}

func newEnv(t testing.TB) *env { return newEnvWith(t, nil) }

// newEnvWith uses net (a client of a real netd) instead of testNet.
func newEnvWith(t testing.TB, net netv1.NetServiceClient) *env { return newEnvReal(t, net, nil) }

// newEnvReal uses real netd and imaged clients where given.
func newEnvReal(t testing.TB, net netv1.NetServiceClient, rootfs imagev1.RootfsServiceClient) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	cfg := config.Defaults()
	cfg.Root, cfg.RunRoot = filepath.Join(dir, "root"), filepath.Join(dir, "run")
	cfg.ShimPath = shimBinary(t)
	e := &env{t: t, cfg: cfg, bus: bus.NewMem("sandboxd"),
		net: &testNet{dir: filepath.Join(dir, "net"), pods: map[string]string{}},
		rootfs: &testRootfs{dir: filepath.Join(dir, "rootfs"), live: map[string]bool{}, images: map[string]map[string]any{
			"busybox": busyboxImage, cfg.PauseImage: {"Entrypoint": []string{"/bin/sleep", "1000000"}},
		}},
	}
	e.realNet, e.realRootfs = net, rootfs
	e.start()
	t.Cleanup(e.cleanup)
	return e
}

// start (re)starts the service on the same root, as after a restart.
func (e *env) start() {
	st, err := store.Open(e.cfg.Root)
	if err != nil {
		e.t.Fatal(err)
	}
	var net netv1.NetServiceClient = e.net
	if e.realNet != nil {
		net = e.realNet
	}
	var rootfs imagev1.RootfsServiceClient = e.rootfs
	if e.realRootfs != nil {
		rootfs = e.realRootfs
	}
	svc, err := New(context.Background(), Deps{Config: e.cfg, Store: st, Bus: e.bus, Net: net, Rootfs: rootfs, Images: e.images,
		Shims: RealShims{Binary: e.cfg.ShimPath}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.svc, e.store, e.up = svc, st, true
}

func (e *env) stop() {
	e.up = false
	e.svc.Close()
	e.store.Close()
}

// cleanup removes every pod left and checks nothing leaked.
func (e *env) cleanup() {
	ctx := context.Background()
	if !e.up { // a test failed while sandboxd was "down"
		e.start()
	}
	for _, p := range e.svc.listPods(nil) {
		if _, err := e.svc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			e.t.Errorf("cleanup remove pod %s: %v", p.Id, err)
		}
	}
	e.stop()
	if n := e.net.held(); n != 0 {
		e.t.Errorf("leaked %d pod networks", n)
	}
	if n := e.rootfs.count(); n != 0 {
		e.t.Errorf("leaked %d rootfs", n)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), e.cfg.RunRoot) {
		e.t.Errorf("leaked mounts under %s", e.cfg.RunRoot)
	}
}

var shimOnce struct {
	sync.Once
	path string
	err  error
}

// shimBinary builds flotilla-shim once per test binary.
func shimBinary(t testing.TB) string {
	shimOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flotilla-shim-bin-")
		if err != nil {
			shimOnce.err = err
			return
		}
		p := filepath.Join(dir, "flotilla-shim")
		shimOnce.err = testbuild.Build(p)
		shimOnce.path = p
	})
	if shimOnce.err != nil {
		t.Fatal(shimOnce.err)
	}
	return shimOnce.path
}

func killPid(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

func (r *testRootfs) ListRootfs(context.Context, *imagev1.ListRootfsRequest, ...grpc.CallOption) (*imagev1.ListRootfsResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	resp := &imagev1.ListRootfsResponse{}
	for id := range r.live {
		resp.Rootfs = append(resp.Rootfs, &imagev1.Rootfs{ContainerId: id})
	}
	return resp, nil
}
