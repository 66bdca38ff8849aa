package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"flotilla.dev/lib/bus"
	"flotilla.dev/lib/testutil/registry"
	eventsv1 "flotilla.dev/proto/events/v1"
)

const gotags = "containers_image_openpgp,exclude_graphdriver_btrfs,exclude_graphdriver_zfs,containers_image_docker_daemon_stub"

// binary returns $FLOTILLA_BIN/imaged when set, else builds it.
func binary(t *testing.T) string {
	if d := os.Getenv("FLOTILLA_BIN"); d != "" {
		if p := filepath.Join(d, "imaged"); fileExists(p) {
			return p
		}
	}
	p := filepath.Join(t.TempDir(), "imaged")
	out, err := exec.Command("go", "build", "-tags", gotags, "-o", p, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func crictlPath(t *testing.T) string {
	if p, err := exec.LookPath("crictl"); err == nil {
		return p
	}
	p := filepath.Join(registry.RepoRoot(), ".tools", "bin", "crictl")
	if !fileExists(p) {
		t.Skip("crictl not installed (.tools/bin)")
	}
	return p
}

// TestBinaryWithCrictl runs the real imaged binary (config file, NATS,
// overlay store in a temp root) and drives it with crictl.
func TestBinaryWithCrictl(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	crictl := crictlPath(t)
	bin := binary(t)
	reg := registry.StartT(t, registry.Options{Images: []string{"busybox"}})
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
	var pulled []*eventsv1.ImageEvent
	started := make(chan struct{}, 1)
	unsub, err := sub.Subscribe("flotilla.v1.imaged.>", func(e *eventsv1.Envelope) {
		mu.Lock()
		defer mu.Unlock()
		switch e.Subject {
		case eventsv1.SubjectImagePulled:
			pulled = append(pulled, e.GetImage())
		case eventsv1.SubjectImagedStarted:
			started <- struct{}{}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()
	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}

	dir, err := os.MkdirTemp("", "imaged-bin-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "imaged.sock")
	conf := fmt.Sprintf(`[imaged]
socket = %q
nats_url = %q
root = %q
run_root = %q
registries_conf = %q
signature_policy = %q
registries_dir = %q
pull_progress_timeout = "30s"
`, sock, nats.ClientURL(), filepath.Join(dir, "root"), filepath.Join(dir, "run"), reg.RegistriesConf, reg.PolicyJSON, filepath.Join(dir, "registries.d"))
	cfgPath := filepath.Join(dir, "flotilla.toml")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfgPath)
	logf, err := os.Create(filepath.Join(dir, "imaged.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "imaged.log"))
			t.Logf("imaged log:\n%s", b)
		}
	}()
	select {
	case <-started:
	case err := <-exited:
		t.Fatalf("imaged exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no started event from imaged")
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket %v %v, want mode 0600", fi, err)
	}

	run := func(args ...string) string {
		t.Helper()
		full := append([]string{"--image-endpoint", "unix://" + sock, "--timeout", "60s"}, args...)
		c := exec.Command(crictl, full...)
		var stderr strings.Builder
		c.Stderr = &stderr
		out, err := c.Output()
		if err != nil {
			t.Fatalf("crictl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
		}
		return string(out)
	}
	out := run("pull", "busybox")
	id := strings.TrimPrefix(strings.TrimSpace(out[strings.LastIndex(out, " ")+1:]), "sha256:")
	run("pull", "registry.k8s.io/e2e-test-images/busybox:1.29-2")

	var images struct {
		Images []struct {
			ID       string   `json:"id"`
			RepoTags []string `json:"repoTags"`
		} `json:"images"`
	}
	if err := json.Unmarshal([]byte(run("images", "-o", "json")), &images); err != nil {
		t.Fatal(err)
	}
	if len(images.Images) != 1 || images.Images[0].ID != id || len(images.Images[0].RepoTags) != 2 {
		t.Fatalf("crictl images = %+v (pulled %s)", images.Images, id)
	}
	var inspect struct {
		Info struct {
			ImageSpec struct {
				Config struct{ Cmd []string } `json:"config"`
			} `json:"imageSpec"`
		} `json:"info"`
	}
	if ins := run("inspecti", "-o", "json", "busybox"); json.Unmarshal([]byte(ins), &inspect) != nil {
		t.Logf("inspecti: %s", ins)
		t.Fatal(err)
	}
	if len(inspect.Info.ImageSpec.Config.Cmd) == 0 {
		t.Errorf("crictl inspecti: no config in the verbose info")
	}
	if fs := run("imagefsinfo"); !strings.Contains(fs, "usedBytes") {
		t.Errorf("crictl imagefsinfo = %s", fs)
	}
	run("rmi", id)
	if out := run("images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("images after rmi: %s", out)
	}

	if err := sub.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(pulled)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d pulled events on NATS, want 2", n)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition
	}
	mu.Lock()
	if pulled[0].ImageId != id {
		t.Errorf("pulled event %v, want image id %s", pulled[0], id)
	}
	mu.Unlock()

	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("imaged exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("imaged did not stop on SIGTERM")
	}
	checkNoMounts(t, dir)
}

func checkNoMounts(t *testing.T, dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			t.Errorf("mount left: %s", fields[4])
			_ = syscall.Unmount(fields[4], syscall.MNT_DETACH)
		}
	}
}
