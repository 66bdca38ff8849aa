// Package framework starts real Flotilla fleets for end-to-end tests: the
// binaries are built once, each fleet lives in its own temp root with its
// own sockets, NATS port, bridge and subnet; daemon logs are dumped when a
// test fails, and the test fails if the fleet leaks mounts, network
// namespaces, links or processes.
package framework

import (
	"bytes"
	"context"
	"flotilla.dev/shim/testbuild"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"flotilla.dev/ctl/fleet"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// GoTags are the build tags the binaries need.
const GoTags = "containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_zfs,containers_image_docker_daemon_stub"

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// RepoRoot is the checkout's root (test/e2e/../..).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// BinDir returns the directory of the fleet's binaries: $FLOTILLA_BIN when
// set (make e2e builds them first), otherwise they are built once into a
// temp dir.
func BinDir(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if d := os.Getenv("FLOTILLA_BIN"); d != "" {
			binDir = d
			return
		}
		dir, err := os.MkdirTemp("", "flotilla-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-tags", GoTags, "-o", dir+"/",
			"flotilla.dev/criproxy/cmd/criproxy", "flotilla.dev/imaged/cmd/imaged", "flotilla.dev/sandboxd/cmd/sandboxd",
			"flotilla.dev/netd/cmd/netd", "flotilla.dev/ctl/cmd/flotctl")
		cmd.Dir = RepoRoot()
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build binaries: %v\n%s", err, out)
			return
		}
		if err := testbuild.Build(filepath.Join(dir, "flotilla-shim")); err != nil {
			buildErr = err
			return
		}
		binDir = dir
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// Tool returns the path of a pinned tool in .tools/bin (crictl, critest).
func Tool(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(RepoRoot(), ".tools", "bin", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not installed (run make deps): %v", name, err)
	}
	return p
}

// RequireRoot skips a test that needs root when not root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root")
	}
}

// Fleet is a running fleet with CRI clients on its socket.
type Fleet struct {
	*fleet.Fleet
	T       testing.TB
	Runtime runtimeapi.RuntimeServiceClient
	Images  runtimeapi.ImageServiceClient
	conn    *grpc.ClientConn
}

// Options for StartFleet.
type Options struct {
	fleet.Options
	// NoWait skips waiting for Status to be ready.
	NoWait bool
	// WaitNetwork also waits for NetworkReady (default: RuntimeReady only).
	WaitNetwork bool
}

// StartFleet starts a fleet in a temp root and stops it (with leak checks)
// when the test ends.
func StartFleet(t testing.TB, o Options) *Fleet {
	t.Helper()
	RequireRoot(t)
	bin := BinDir(t)
	if o.Root == "" {
		// Short paths: unix socket paths are limited to 108 bytes.
		root, err := os.MkdirTemp("", "flt-")
		if err != nil {
			t.Fatal(err)
		}
		o.Root = root
	}
	o.BinDir = bin
	if o.LogLevel == "" {
		o.LogLevel = "debug"
	}
	before := Snapshot(o.Root)
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f, err := fleet.Start(o.Options, logger)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := fleet.Dial(f.Layout.CRISocket)
	if err != nil {
		f.Stop()
		t.Fatal(err)
	}
	ff := &Fleet{Fleet: f, T: t, conn: conn, Runtime: runtimeapi.NewRuntimeServiceClient(conn), Images: runtimeapi.NewImageServiceClient(conn)}
	t.Cleanup(func() {
		ff.CleanupPods()
		conn.Close()
		f.Stop()
		if t.Failed() {
			var buf bytes.Buffer
			f.Logs(&buf, 64<<10)
			t.Logf("daemon logs of the fleet in %s:\n%s", o.Root, buf.String())
		}
		bridge := fleet.NetworkFor(o.Root).Bridge
		leaks := Snapshot(o.Root).Leaks(before)
		for _, port := range BridgePorts(bridge) {
			leaks = append(leaks, "veth "+port+" on bridge "+bridge)
		}
		RemoveBridge(bridge)
		if len(leaks) > 0 {
			t.Errorf("fleet in %s leaked:\n  %s", o.Root, strings.Join(leaks, "\n  "))
		}
		if !t.Failed() {
			_ = os.RemoveAll(o.Root)
		}
	})
	if !o.NoWait {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if _, err := f.WaitReady(ctx, o.WaitNetwork); err != nil {
			t.Fatal(err)
		}
	}
	return ff
}

// Endpoint is the fleet's CRI endpoint.
func (f *Fleet) Endpoint() string { return f.Layout.Endpoint() }

// Crictl runs crictl against the fleet and returns its combined output.
func (f *Fleet) Crictl(args ...string) (string, error) {
	f.T.Helper()
	crictl := Tool(f.T, "crictl")
	full := append([]string{"--runtime-endpoint", f.Endpoint(), "--image-endpoint", f.Endpoint(), "--timeout", "30s"}, args...)
	cmd := exec.Command(crictl, full...)
	cmd.Env = append(os.Environ(), "CRI_CONFIG_FILE=/dev/null")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Flotctl runs flotctl with --root of this fleet.
func (f *Fleet) Flotctl(args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(BinDir(f.T), "flotctl"), append([]string{"--root", f.Layout.Root}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// CleanupPods stops and removes every pod the fleet still has, so a test
// that failed halfway does not leak containers.
func (f *Fleet) CleanupPods() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := f.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return
	}
	for _, p := range resp.Items {
		_, _ = f.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id})
		if _, err := f.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			f.T.Logf("cleanup: remove pod %s: %v", p.Id, err)
		}
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// Discard is a logger that drops everything.
var Discard = slog.New(slog.NewTextHandler(io.Discard, nil))
