package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"flotilla.dev/ctl/fleet"
	"flotilla.dev/test/e2e/framework"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// crictl version and info through criproxy: the runtime is flotilla and
// Status carries both conditions.
func TestCrictlVersionAndInfo(t *testing.T) {
	f := framework.StartFleet(t, framework.Options{})
	out, err := f.Crictl("version")
	if err != nil {
		t.Fatalf("crictl version: %v\n%s", err, out)
	}
	if !strings.Contains(out, "RuntimeName:  flotilla") {
		t.Fatalf("crictl version does not name flotilla:\n%s", out)
	}
	out, err = f.Crictl("info")
	if err != nil {
		t.Fatalf("crictl info: %v\n%s", err, out)
	}
	start := strings.Index(out, "{")
	var info struct {
		Status struct {
			Conditions []struct {
				Type   string `json:"type"`
				Status bool   `json:"status"`
				Reason string `json:"reason"`
			} `json:"conditions"`
		} `json:"status"`
	}
	if start < 0 || json.Unmarshal([]byte(out[start:]), &info) != nil {
		t.Fatalf("crictl info is not JSON:\n%s", out)
	}
	types := map[string]bool{}
	for _, c := range info.Status.Conditions {
		types[c.Type] = true
		if c.Type == runtimeapi.RuntimeReady && !c.Status {
			t.Errorf("RuntimeReady is false: %+v", c)
		}
		if !c.Status && c.Reason == "" {
			t.Errorf("false condition without a reason: %+v", c)
		}
	}
	if !types[runtimeapi.RuntimeReady] || !types[runtimeapi.NetworkReady] {
		t.Fatalf("conditions %+v: want RuntimeReady and NetworkReady", info.Status.Conditions)
	}
}

// Killing imaged makes image calls fail fast with Unavailable naming
// imaged; the supervisor restarts it and calls work again, with criproxy
// untouched.
func TestImagedDownThenRestarted(t *testing.T) {
	f := framework.StartFleet(t, framework.Options{Options: fleet.Options{Restart: true}})
	proxyPid := f.Pid("criproxy")
	if err := f.Kill("imaged", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The supervisor waits a second before restarting: the call below runs
	// while imaged is down.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err := f.Images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	cancel()
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("ListImages with imaged down: want Unavailable within 2s, got %v", err)
	}
	if !strings.Contains(status.Convert(err).Message(), "imaged") {
		t.Fatalf("error does not name imaged: %v", err)
	}
	out, cerr := f.Crictl("images")
	if cerr == nil && f.Pid("imaged") == 0 {
		t.Fatalf("crictl images succeeded with imaged down:\n%s", out)
	}

	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = f.Images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
		cancel()
		if status.Code(err) != codes.Unavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("imaged not back after restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if f.Restarts("imaged") != 1 {
		t.Fatalf("imaged restarts = %d, want 1", f.Restarts("imaged"))
	}
	if f.Pid("criproxy") != proxyPid {
		t.Fatal("criproxy was restarted")
	}
}

// flotctl status shows every daemon healthy with its version and socket.
func TestFlotctlStatus(t *testing.T) {
	f := framework.StartFleet(t, framework.Options{})
	out, err := f.Flotctl("status", "-o", "json")
	if err != nil {
		t.Fatalf("flotctl status: %v\n%s", err, out)
	}
	var rows []struct {
		Daemon  string `json:"daemon"`
		Healthy bool   `json:"healthy"`
		Version string `json:"version"`
		Socket  string `json:"socket"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if len(rows) != len(fleet.Daemons) {
		t.Fatalf("got %d daemons, want %d: %s", len(rows), len(fleet.Daemons), out)
	}
	for _, r := range rows {
		if !r.Healthy || r.Version == "" || !strings.HasPrefix(r.Socket, f.Layout.Root) {
			t.Errorf("daemon row %+v", r)
		}
	}
}

// flotctl events --follow prints events as they happen: a restarted
// daemon's started event.
func TestFlotctlEventsFollow(t *testing.T) {
	f := framework.StartFleet(t, framework.Options{Options: fleet.Options{Restart: true}})
	cmd := exec.Command(filepath.Join(framework.BinDir(t), "flotctl"), "--root", f.Layout.Root,
		"events", "--follow", "--count", "1", "--subject", "flotilla.v1.netd.daemon.started")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() //nolint:errcheck
	// Wait until it is subscribed.
	if line, err := bufio.NewReader(stderr).ReadString('\n'); err != nil || !strings.Contains(line, "following") {
		t.Fatalf("flotctl events: %q %v", line, err)
	}
	if err := f.Kill("netd", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- l
	}()
	select {
	case l := <-lines:
		if !strings.Contains(l, "flotilla.v1.netd.daemon.started") || !strings.Contains(l, `"name":"netd"`) {
			t.Fatalf("unexpected event line %q", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no netd started event after restarting netd")
	}
	_ = cmd.Wait()
}

// Two fleets on one machine use different sockets, NATS ports, bridges and
// subnets, and both serve.
func TestTwoFleetsDoNotCollide(t *testing.T) {
	a := framework.StartFleet(t, framework.Options{})
	b := framework.StartFleet(t, framework.Options{})
	na, nb := fleet.NetworkFor(a.Layout.Root), fleet.NetworkFor(b.Layout.Root)
	if na.Bridge == nb.Bridge || na.Subnet == nb.Subnet {
		t.Fatalf("fleets share a network: %+v %+v", na, nb)
	}
	ca, _ := os.ReadFile(a.Layout.ConfigFile)
	cb, _ := os.ReadFile(b.Layout.ConfigFile)
	if natsURL(string(ca)) == natsURL(string(cb)) {
		t.Fatalf("fleets share NATS %s", natsURL(string(ca)))
	}
	for _, f := range []*framework.Fleet{a, b} {
		v, err := f.Runtime.Version(context.Background(), &runtimeapi.VersionRequest{})
		if err != nil || v.RuntimeName != "flotilla" {
			t.Fatalf("fleet %s: %v %v", f.Layout.Root, v, err)
		}
	}
}

func natsURL(cfg string) string {
	for _, l := range strings.Split(cfg, "\n") {
		if strings.HasPrefix(l, "nats_url") {
			return l
		}
	}
	return ""
}

// Every binary prints a commented default config that it accepts back.
func TestPrintedDefaultConfigsLoad(t *testing.T) {
	bin := framework.BinDir(t)
	for _, d := range fleet.Daemons {
		out, err := exec.Command(filepath.Join(bin, d), "--print-config").Output()
		if err != nil {
			t.Fatalf("%s --print-config: %v", d, err)
		}
		if !strings.Contains(string(out), "# ") || !strings.Contains(string(out), "["+d+"]") {
			t.Fatalf("%s: no commented [%s] table:\n%s", d, d, out)
		}
		file := filepath.Join(t.TempDir(), "flotilla.toml")
		if err := os.WriteFile(file, out, 0o600); err != nil {
			t.Fatal(err)
		}
		// --version exits after loading nothing; use an invalid override to
		// prove the file parsed: a bad log level must be reported as such.
		cmd := exec.Command(filepath.Join(bin, d), "--config", file, "--log-level", "bogus")
		res, _ := cmd.CombinedOutput()
		if !strings.Contains(string(res), "unknown log level") {
			t.Fatalf("%s did not load its own default config:\n%s", d, res)
		}
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
