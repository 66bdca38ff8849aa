package client

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
)

// fakeShim answers each control request line with answers[request] (the
// parsing is what is under test here; the real shim is in client_test.go).
func fakeShim(t *testing.T, answers map[string]string) *conn {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(dir, "shim.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			req, _ := bufio.NewReader(c).ReadString('\n')
			c.Write([]byte(answers[req[:len(req)-1]] + "\n"))
			c.Close()
		}
	}()
	return &conn{stateDir: dir, rt: runtimeCmd{id: "ctr"}, execs: map[string]*execSession{}}
}

func TestControlAnswersParse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := fakeShim(t, map[string]string{
		"state":        "ok running 42 1700000000000000000 0 0 0 runc start: exit status 1 (retried)",
		"start":        "err failed_precondition container ctr is running, not created",
		"wait":         "ok 137 1700000000500000000 1",
		"reopen":       "err unknown open log /x: permission denied",
		"resize 80 24": "err not_found no such thing",
	})
	st, err := c.state(ctx)
	if err != nil || st.Status != StatusRunning || st.Pid != 42 || st.StartedAt.UnixNano() != 1700000000000000000 ||
		st.Message != "runc start: exit status 1 (retried)" || st.ID != "ctr" {
		t.Fatalf("state = %+v, %v", st, err)
	}
	if _, err := c.start(ctx); !errdefs.IsFailedPrecondition(err) || err.Error() != "container ctr is running, not created: failed precondition" {
		t.Errorf("start: %v", err)
	}
	if e, err := c.wait(ctx, ""); err != nil || e.Code != 137 || !e.OOMKilled || e.ExitedAt.UnixNano() != 1700000000500000000 {
		t.Errorf("wait = %+v, %v", e, err)
	}
	if err := c.reopenLog(ctx); err == nil || errdefs.IsNotFound(err) || err.Error() != "open log /x: permission denied" {
		t.Errorf("reopen: %v", err)
	}
	if err := c.resize(ctx, "", Size{Width: 80, Height: 24}); !errdefs.IsNotFound(err) {
		t.Errorf("resize: %v", err)
	}
	// A malformed answer is an error, not a zero state.
	bad := fakeShim(t, map[string]string{"state": "ok running x"})
	if _, err := bad.state(ctx); err == nil {
		t.Error("malformed state answer accepted")
	}
	// No shim: Unavailable.
	gone := &conn{stateDir: filepath.Join(os.TempDir(), "no-such-shim-dir")}
	if _, err := gone.state(ctx); !errdefs.IsUnavailable(err) {
		t.Errorf("state without a shim: %v", err)
	}
}

func TestStateMessageDash(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := fakeShim(t, map[string]string{"state": "ok stopped 42 5 3 9 0 -"})
	st, err := c.state(ctx)
	if err != nil || st.Status != StatusStopped || st.Message != "" || st.Exit.Code != 3 || st.Exit.ExitedAt.UnixNano() != 9 {
		t.Fatalf("state = %+v, %v", st, err)
	}
}

// Kill asks the shim first and goes to the runtime only when the shim says
// it cannot (kill --all of a shared PID namespace), does not know the
// request (a shim from before it) or is gone; a stopped container needs
// neither.
func TestKillFallsBackToTheRuntime(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stopped := "ok stopped 42 5 137 9 0 -"
	running := "ok running 42 5 0 0 0 -"
	for _, tc := range []struct {
		name    string
		answers map[string]string
		sig     syscall.Signal
		all     bool
		want    string // "" for success; else a part of the error
	}{
		{"shim signals", map[string]string{"kill 15": "ok"}, syscall.SIGTERM, false, ""},
		{"shim kills all", map[string]string{"kill 9 all": "ok"}, syscall.SIGKILL, true, ""},
		{"shim fails", map[string]string{"kill 9": "err unknown kill 42: Operation not permitted"}, syscall.SIGKILL, false,
			"kill 42: Operation not permitted"},
		{"old shim, stopped", map[string]string{"kill 15": `err invalid_argument unknown request "kill 15"`, "state": stopped},
			syscall.SIGTERM, false, ""},
		{"shared pidns, stopped", map[string]string{"kill 9 all": "err failed_precondition signalling all processes of container ctr needs the runtime", "state": stopped},
			syscall.SIGKILL, true, ""},
		// Running: the runtime is called (there is none here, so it fails).
		{"shared pidns, running", map[string]string{"kill 9 all": "err failed_precondition signalling all processes of container ctr needs the runtime", "state": running},
			syscall.SIGKILL, true, "no-runtime"},
		{"not all, precondition", map[string]string{"kill 9": "err failed_precondition container ctr has no process", "state": running},
			syscall.SIGKILL, false, "has no process"},
	} {
		c := fakeShim(t, tc.answers)
		c.rt.binary = filepath.Join(t.TempDir(), "no-runtime")
		err := c.kill(ctx, "", tc.sig, tc.all)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
