package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"flotilla.dev/imaged/internal/config"
	"flotilla.dev/imaged/internal/server"
	"flotilla.dev/lib/bus"
	"flotilla.dev/lib/testutil/registry"
	eventsv1 "flotilla.dev/proto/events/v1"
	imagev1 "flotilla.dev/proto/image/v1"
	"go.podman.io/storage/pkg/reexec"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	os.Exit(m.Run())
}

// env is one imaged served in-process on a temp socket with a temp store.
type env struct {
	t      testing.TB
	cfg    *config.Config
	images runtimeapi.ImageServiceClient
	rootfs imagev1.RootfsServiceClient
	bus    *bus.Mem
	log    *slog.Logger
	stop   func()

	mu     sync.Mutex
	events []*eventsv1.Envelope
}

type envOpts struct {
	registriesConf string // content; default: the registry's
	policy         string // content; default: accept anything
	registriesD    string // registries.d default-docker yaml; optional
	progress       time.Duration
	quiet          bool   // log warnings only
	authFile       string // containers-auth.json content; optional
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (overlay storage)")
	}
}

func startRegistry(t testing.TB, opts registry.Options) *registry.Registry {
	t.Helper()
	needRoot(t)
	return registry.StartT(t, opts)
}

func newEnv(t testing.TB, reg *registry.Registry, o envOpts) *env {
	t.Helper()
	needRoot(t)
	dir, err := os.MkdirTemp("", "imaged-test-")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Socket = filepath.Join(dir, "imaged.sock")
	cfg.Root = filepath.Join(dir, "root")
	cfg.RunRoot = filepath.Join(dir, "run")
	cfg.RegistriesConf = filepath.Join(dir, "registries.conf")
	cfg.SignaturePolicy = filepath.Join(dir, "policy.json")
	cfg.RegistriesDir = filepath.Join(dir, "registries.d")
	if o.progress > 0 {
		cfg.PullProgressTimeout = config.Duration(o.progress)
	}
	if o.registriesConf == "" && reg != nil {
		o.registriesConf = registry.RegistriesConfText(reg.Addr)
	}
	if o.policy == "" {
		o.policy = registry.PolicyJSONText
	}
	must(t, os.WriteFile(cfg.RegistriesConf, []byte(o.registriesConf), 0o644))
	must(t, os.WriteFile(cfg.SignaturePolicy, []byte(o.policy), 0o644))
	must(t, os.MkdirAll(cfg.RegistriesDir, 0o755))
	if o.authFile != "" {
		cfg.AuthFile = filepath.Join(dir, "auth.json")
		must(t, os.WriteFile(cfg.AuthFile, []byte(o.authFile), 0o600))
	}
	if o.registriesD != "" {
		must(t, os.WriteFile(filepath.Join(cfg.RegistriesDir, "default.yaml"), []byte(o.registriesD), 0o644))
	}
	e := &env{t: t, cfg: cfg, bus: bus.NewMem("imaged")}
	unsub, _ := e.bus.Subscribe(eventsv1.SubjectAll, func(ev *eventsv1.Envelope) {
		e.mu.Lock()
		e.events = append(e.events, ev)
		e.mu.Unlock()
	})
	level := slog.LevelInfo
	if o.quiet {
		level = slog.LevelWarn
	}
	e.log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
	e.start()
	t.Cleanup(func() {
		e.stop()
		unsub()
		unmountUnder(t, dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	return e
}

// start serves imaged in-process and connects to it.
func (e *env) start() {
	t := e.t
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Serve(ctx, e.cfg, e.log, e.bus) }()
	conn, err := grpc.NewClient("unix://"+e.cfg.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	must(t, err)
	e.images = runtimeapi.NewImageServiceClient(conn)
	e.rootfs = imagev1.NewRootfsServiceClient(conn)
	e.stop = func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("imaged: %v", err)
		}
		e.stop = func() {}
	}
	// Wait until serving (the socket answers).
	waitCtx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	if _, err := e.images.ListImages(waitCtx, &runtimeapi.ListImagesRequest{}, grpc.WaitForReady(true)); err != nil {
		cancel()
		t.Fatalf("imaged not serving: %v (%v)", err, drain(done))
	}
}

func drain(c chan error) error {
	select {
	case err := <-c:
		return err
	case <-time.After(time.Second):
		return nil
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// unmountUnder fails the test for any mount left under dir, and removes it.
func unmountUnder(t testing.TB, dir string) {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	var left []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			left = append(left, fields[4])
		}
	}
	for i := len(left) - 1; i >= 0; i-- {
		_ = syscall.Unmount(left[i], syscall.MNT_DETACH)
	}
	if len(left) > 0 {
		t.Errorf("mounts left under %s: %v", dir, left)
	}
}

func (e *env) eventsOn(subject string) []*eventsv1.ImageEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*eventsv1.ImageEvent
	for _, ev := range e.events {
		if ev.Subject == subject {
			out = append(out, ev.GetImage())
		}
	}
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func (e *env) pull(ctx context.Context, image string, auth *runtimeapi.AuthConfig) (string, error) {
	resp, err := e.images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: image}, Auth: auth})
	return resp.GetImageRef(), err
}

func (e *env) status(ctx context.Context, image string) *runtimeapi.Image {
	e.t.Helper()
	resp, err := e.images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: image}})
	must(e.t, err)
	return resp.GetImage()
}

func (e *env) list(ctx context.Context) []*runtimeapi.Image {
	e.t.Helper()
	resp, err := e.images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	must(e.t, err)
	return resp.GetImages()
}

// stored counts the layers and images in the store's metadata files.
func (e *env) stored() (layers, images int) {
	e.t.Helper()
	count := func(p string) int {
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			return 0
		}
		must(e.t, err)
		var v []json.RawMessage
		must(e.t, json.Unmarshal(b, &v))
		return len(v)
	}
	d := e.cfg.StorageDriver
	return count(filepath.Join(e.cfg.Root, d+"-layers", "layers.json")), count(filepath.Join(e.cfg.Root, d+"-images", "images.json"))
}
