package cri

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"flotilla.dev/lib/daemon"
	flog "flotilla.dev/lib/log"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// serve serves the service on a temp unix socket for crictl.
func (e *env) serve() string {
	e.t.Helper()
	sock := filepath.Join(e.t.TempDir(), "sandboxd.sock")
	srv, err := daemon.NewServer(sock, 0o600, flog.ServerOptions(slog.New(slog.NewTextHandler(io.Discard, nil)))...)
	if err != nil {
		e.t.Fatal(err)
	}
	runtimeapi.RegisterRuntimeServiceServer(srv.GRPC, e.svc)
	// crictl validates an image endpoint before exec; imaged serves it in
	// a fleet, an empty one does here.
	runtimeapi.RegisterImageServiceServer(srv.GRPC, emptyImages{})
	st, err := e.svc.StartStreaming("127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done; st.Stop() })
	return sock
}

type emptyImages struct {
	runtimeapi.UnimplementedImageServiceServer
}

func (emptyImages) ListImages(context.Context, *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	return &runtimeapi.ListImagesResponse{}, nil
}

func (emptyImages) ImageFsInfo(context.Context, *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	return &runtimeapi.ImageFsInfoResponse{}, nil
}

func crictlPath(t *testing.T) string {
	bin, err := exec.LookPath("crictl")
	if err != nil {
		bin = "/work/main/.tools/bin/crictl"
		if _, err := os.Stat(bin); err != nil {
			t.Skip("crictl not found")
		}
	}
	return bin
}

func crictl(t *testing.T, sock string, args ...string) string {
	t.Helper()
	bin := crictlPath(t)
	full := append([]string{"--runtime-endpoint", "unix://" + sock, "--timeout", "60s"}, args...)
	cmd := exec.Command(bin, full...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		out = append(out, stderr.String()...)
		t.Fatalf("crictl %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func writeJSON(t *testing.T, v any) string {
	p := filepath.Join(t.TempDir(), "c.json")
	data, _ := json.Marshal(v)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCrictlFlow drives sandboxd's socket with crictl: runp, create, start,
// exec, logs, stop, rm, stopp, rmp (a default crictl pod shares one PID
// namespace, so this also runs the pause container).
func TestCrictlFlow(t *testing.T) {
	e := newEnv(t)
	sock := e.serve()
	logDir := filepath.Join(t.TempDir(), "logs")
	pod := writeJSON(t, map[string]any{
		"metadata":      map[string]any{"name": "crictl-pod", "namespace": "default", "uid": "crictl-uid"},
		"log_directory": logDir,
		"linux":         map[string]any{},
	})
	ctr := writeJSON(t, map[string]any{
		"metadata": map[string]any{"name": "app"},
		"image":    map[string]any{"image": "busybox"},
		"command":  []string{"sh", "-c", "echo started; exec sleep 1000"},
		"log_path": "app.log",
	})
	podID := crictl(t, sock, "runp", pod)
	cid := crictl(t, sock, "create", podID, ctr, pod)
	crictl(t, sock, "start", cid)
	if out := crictl(t, sock, "exec", cid, "echo", "hi from exec"); out != "hi from exec" {
		t.Fatalf("exec: %q", out)
	}
	if out := crictl(t, sock, "logs", cid); !strings.Contains(out, "started") {
		t.Fatalf("logs: %q", out)
	}
	if out := crictl(t, sock, "ps", "-q"); out != cid {
		t.Fatalf("ps: %q", out)
	}
	// The streaming list RPCs give what the unary ones give.
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rc := runtimeapi.NewRuntimeServiceClient(conn)
	ps, err := rc.StreamPodSandboxes(context.Background(), &runtimeapi.StreamPodSandboxesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	pm, err := ps.Recv()
	if err != nil || len(pm.PodSandboxes) != 1 || pm.PodSandboxes[0].Id != podID {
		t.Fatalf("stream pods: %v %v", pm, err)
	}
	cs, err := rc.StreamContainers(context.Background(), &runtimeapi.StreamContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	cm, err := cs.Recv()
	if err != nil || len(cm.Containers) != 1 || cm.Containers[0].Id != cid {
		t.Fatalf("stream containers: %v %v", cm, err)
	}
	crictl(t, sock, "stop", "-t", "1", cid)
	crictl(t, sock, "rm", cid)
	crictl(t, sock, "stopp", podID)
	crictl(t, sock, "rmp", podID)
	if out := crictl(t, sock, "pods", "-q"); out != "" {
		t.Fatalf("pods left: %q", out)
	}
}
