package main

import (
	"context"
	"net"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"flotilla.dev/lib/testutil/registry"
)

// TestCritestImageManager runs critest's "Image Manager" specs against the
// imaged binary. Those specs use only the image service; critest's connection
// check calls RuntimeService.Version, answered by a stub (the full runtime is
// sandboxd's, exercised through criproxy in test/e2e). Opt in with FLOTILLA_CRITEST=1; it takes about a minute.
func TestCritestImageManager(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	critest := filepath.Join(registry.RepoRoot(), ".tools", "bin", "critest")
	if !fileExists(critest) {
		t.Skip("critest not installed")
	}
	bin := binary(t)
	reg := registry.StartT(t, registry.Options{})
	dir := t.TempDir()
	sock := startImaged(t, bin, dir, reg)
	rt := versionOnlyRuntime(t, filepath.Join(dir, "runtime.sock"))
	cmd := exec.Command(critest, "--runtime-endpoint", "unix://"+rt, "--image-endpoint", "unix://"+sock,
		"--ginkgo.focus", "Image Manager", "--ginkgo.no-color",
		// Pinned by an upstream digest no local build can reproduce (CRITEST.md).
		"--ginkgo.skip", "public image with digest")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("critest:\n%s", out)
		t.Fatalf("critest: %v", err)
	}
	t.Logf("critest:\n%s", tailLines(string(out), 8))
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startImaged runs the binary on a config in dir until the test ends and
// returns its socket once it answers.
func startImaged(t *testing.T, bin, dir string, reg *registry.Registry) string {
	sock := filepath.Join(dir, "imaged.sock")
	conf := "[imaged]\nsocket = '" + sock + "'\nnats_url = 'nats://127.0.0.1:1'\nroot = '" + filepath.Join(dir, "root") +
		"'\nrun_root = '" + filepath.Join(dir, "run") + "'\nregistries_conf = '" + reg.RegistriesConf +
		"'\nsignature_policy = '" + reg.PolicyJSON + "'\nregistries_dir = '" + filepath.Join(dir, "registries.d") + "'\n"
	cfg := filepath.Join(dir, "flotilla.toml")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfg)
	logf, err := os.Create(filepath.Join(dir, "imaged.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logf.Close()
		checkNoMounts(t, dir)
	})
	deadline := time.Now().Add(30 * time.Second)
	for !fileExists(sock) {
		if time.Now().After(deadline) {
			t.Fatal("imaged socket did not appear")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition
	}
	return sock
}

type versionRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
}

func (versionRuntime) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "imaged-test", RuntimeVersion: "0", RuntimeApiVersion: "v1"}, nil
}

func versionOnlyRuntime(t *testing.T, sock string) string {
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, versionRuntime{})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return sock
}
