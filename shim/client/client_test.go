package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"flotilla.dev/shim/client"
)

func TestLifecycleLogsAndExitFile(t *testing.T) {
	long := strings.Repeat("0123456789", 4000) // 40000 bytes: P, P, F with 16 KiB lines
	c := newCtr(t, false, "sh", "-c", "echo hello; echo oops >&2; echo "+long+"; exit 3")
	cl := c.spawn(t, nil)

	st, err := cl.State(ctx(t))
	if err != nil || st.Status != client.StatusCreated || st.Pid == 0 || st.ID != c.id {
		t.Fatalf("state after spawn = %+v, %v", st, err)
	}
	for _, sock := range []string{"shim.sock", "attach.sock"} {
		fi, err := os.Stat(filepath.Join(c.stateDir, sock))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", sock, fi.Mode())
		}
	}
	if _, err := client.ReadExitFile(c.stateDir); !errdefs.IsNotFound(err) {
		t.Fatalf("exit file before exit: %v", err)
	}
	pid, err := cl.Start(ctx(t))
	if err != nil || pid != st.Pid {
		t.Fatalf("start = %d, %v (state pid %d)", pid, err, st.Pid)
	}
	if _, err := cl.Start(ctx(t)); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("second start: %v, want FailedPrecondition", err)
	}
	exit, err := cl.Wait(ctx(t))
	if err != nil || exit.Code != 3 || exit.OOMKilled || exit.ExitedAt.IsZero() {
		t.Fatalf("wait = %+v, %v", exit, err)
	}
	fileExit, err := client.ReadExitFile(c.stateDir)
	if err != nil || fileExit != exit {
		t.Fatalf("exit file = %+v, %v; wait said %+v", fileExit, err, exit)
	}
	st, _ = cl.State(ctx(t))
	if st.Status != client.StatusStopped || st.Exit != exit || st.StartedAt.IsZero() {
		t.Fatalf("state after exit = %+v", st)
	}

	lines := logLines(t, readLog(t, c.logPath))
	var stdout, stderr [][3]string
	for _, l := range lines {
		if l[0] == "stdout" {
			stdout = append(stdout, l)
		} else {
			stderr = append(stderr, l)
		}
	}
	if len(stderr) != 1 || stderr[0] != [3]string{"stderr", "F", "oops"} {
		t.Errorf("stderr entries = %q", stderr)
	}
	if len(stdout) != 4 || stdout[0] != [3]string{"stdout", "F", "hello"} ||
		stdout[1][1] != "P" || stdout[2][1] != "P" || stdout[3][1] != "F" ||
		stdout[1][2]+stdout[2][2]+stdout[3][2] != long || len(stdout[1][2]) != 16<<10 {
		t.Errorf("stdout entries: %d, tags %q", len(stdout), tags(stdout))
	}

	// Kill of an exited container succeeds.
	if err := cl.Kill(ctx(t), syscall.SIGKILL, false); err != nil {
		t.Errorf("kill after exit: %v", err)
	}
	c.finish(t, cl)
	if _, err := client.Connect(ctx(t), c.stateDir); !errdefs.IsUnavailable(err) {
		t.Errorf("connect after shutdown: %v, want Unavailable", err)
	}
	if got, err := client.ReadExitFile(c.stateDir); err != nil || got != exit {
		t.Errorf("exit file after shutdown = %+v, %v", got, err)
	}
}

func tags(ls [][3]string) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l[1])
	}
	return out
}

func TestKillExecSyncExecUpdate(t *testing.T) {
	c := newCtr(t, false, "sleep", "1000")
	cl := c.spawn(t, nil)
	if _, err := cl.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := cl.Delete(ctx(t)); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("delete while running: %v", err)
	}
	if err := cl.Shutdown(ctx(t)); !errdefs.IsFailedPrecondition(err) {
		t.Fatalf("shutdown while running: %v", err)
	}

	res, err := cl.ExecSync(ctx(t), &specs.Process{Args: []string{"sh", "-c", "echo out; echo err >&2; exit 2"}, Cwd: "/", Env: []string{"PATH=/bin"}}, 0)
	if err != nil || string(res.Stdout) != "out\n" || string(res.Stderr) != "err\n" || res.ExitCode != 2 || res.TimedOut {
		t.Fatalf("exec sync = %+v (%q %q), %v", res, res.Stdout, res.Stderr, err)
	}
	res, err = cl.ExecSync(ctx(t), &specs.Process{Args: []string{"sleep", "100"}, Cwd: "/", Env: []string{"PATH=/bin"}}, 300*time.Millisecond)
	if err != nil || !res.TimedOut || res.ExitCode != 128+9 {
		t.Fatalf("exec sync with timeout = %+v, %v", res, err)
	}
	// Output beyond 16 MiB is dropped.
	res, err = cl.ExecSync(ctx(t), &specs.Process{Args: []string{"head", "-c", "20000000", "/dev/zero"}, Cwd: "/", Env: []string{"PATH=/bin"}}, 0)
	if err != nil || len(res.Stdout) != 16<<20 || res.ExitCode != 0 {
		t.Fatalf("exec sync of 20 MB: %d bytes, exit %d, %v", len(res.Stdout), res.ExitCode, err)
	}
	if left, _ := filepath.Glob(filepath.Join(c.stateDir, "execsync-*")); len(left) != 0 {
		t.Errorf("exec sync files left: %v", left)
	}
	if _, err := cl.ExecSync(ctx(t), &specs.Process{Args: []string{"/nonexistent"}, Cwd: "/"}, 0); err == nil {
		t.Error("exec sync of a missing binary succeeded")
	}
	if _, err := cl.ExecSync(ctx(t), &specs.Process{}, 0); !errdefs.IsInvalidArgument(err) {
		t.Errorf("exec sync without args: %v", err)
	}

	// Interactive exec with stdin.
	var out, errOut bytes.Buffer
	exit, err := cl.Exec(ctx(t), client.ExecOptions{ID: "cat1", Stdin: true,
		Process: &specs.Process{Args: []string{"sh", "-c", "cat; echo done >&2; exit 5"}, Cwd: "/", Env: []string{"PATH=/bin"}}},
		client.Streams{Stdin: strings.NewReader("through stdin\n"), Stdout: &out, Stderr: &errOut})
	if err != nil || exit.Code != 5 || out.String() != "through stdin\n" || errOut.String() != "done\n" {
		t.Fatalf("exec = %+v, %v; stdout %q stderr %q", exit, err, out.String(), errOut.String())
	}
	if e, err := cl.WaitExec(ctx(t), "cat1"); err != nil || e.Code != 5 {
		t.Errorf("wait exec = %+v, %v", e, err)
	}
	if _, err := cl.WaitExec(ctx(t), "nope"); !errdefs.IsNotFound(err) {
		t.Errorf("wait unknown exec: %v", err)
	}

	// Update: a new memory limit reaches the container's cgroup.
	limit := int64(64 << 20)
	if err := cl.Update(ctx(t), &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}); err != nil {
		t.Fatalf("update: %v", err)
	}
	got, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", cgroupParent, c.id, "memory.limit_in_bytes"))
	if err != nil || strings.TrimSpace(string(got)) != "67108864" {
		t.Errorf("memory limit after update = %q, %v", got, err)
	}

	if err := cl.Kill(ctx(t), syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	exit, err = cl.Wait(ctx(t))
	if err != nil || exit.Code != 137 {
		t.Fatalf("wait after kill = %+v, %v", exit, err)
	}
	if _, err := cl.ExecSync(ctx(t), &specs.Process{Args: []string{"true"}, Cwd: "/"}, 0); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("exec sync in a stopped container: %v", err)
	}
	c.finish(t, cl)
}

func TestAttachStdinOnce(t *testing.T) {
	c := newCtr(t, false, "sh", "-c", "cat; echo bye")
	cl := c.spawn(t, func(o *client.SpawnOptions) { o.Stdin, o.StdinOnce = true, true })
	if _, err := cl.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	// Attach returns when the container exits: stdin EOF closes its stdin
	// (stdin_once), cat ends, sh prints bye.
	if err := cl.Attach(ctx(t), client.Streams{Stdin: strings.NewReader("to cat\n"), Stdout: &out}); err != nil {
		t.Fatalf("attach: %v", err)
	}
	if out.String() != "to cat\nbye\n" {
		t.Errorf("attach output %q", out.String())
	}
	exit, err := cl.Wait(ctx(t))
	if err != nil || exit.Code != 0 {
		t.Fatalf("wait = %+v, %v", exit, err)
	}
	lines := logLines(t, readLog(t, c.logPath))
	if len(lines) != 2 || lines[0][2] != "to cat" || lines[1][2] != "bye" {
		t.Errorf("log %q", lines)
	}
	c.finish(t, cl)
}

func TestTerminalResizeAndAttach(t *testing.T) {
	c := newCtr(t, true, "sh", "-c", "stty size; read line; echo got:$line")
	cl := c.spawn(t, func(o *client.SpawnOptions) { o.Stdin = true })
	// The pty exists once the container is created.
	if err := cl.ResizePty(ctx(t), "", client.Size{Width: 100, Height: 40}); err != nil {
		t.Fatalf("resize: %v", err)
	}
	if _, err := cl.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- cl.Attach(ctx(t), client.Streams{Stdin: pr, Stdout: &out}) }()
	waitFor(t, "stty output in the log", func() bool { return strings.Contains(readLog(t, c.logPath), "40 100") })
	pw.Write([]byte("typed\n"))
	if err := <-done; err != nil {
		t.Fatalf("attach: %v", err)
	}
	pw.Close()
	exit, err := cl.Wait(ctx(t))
	if err != nil || exit.Code != 0 {
		t.Fatalf("wait = %+v, %v", exit, err)
	}
	log := readLog(t, c.logPath)
	if !strings.Contains(log, "stdout F 40 100\r") || !strings.Contains(log, "got:typed") {
		t.Errorf("tty log:\n%s", log)
	}
	if !strings.Contains(out.String(), "got:typed") {
		t.Errorf("attach output %q", out.String())
	}
	c.finish(t, cl)
}

func TestReopenLog(t *testing.T) {
	c := newCtr(t, false, "sh", "-c", "echo one; read x; echo two")
	cl := c.spawn(t, func(o *client.SpawnOptions) { o.Stdin = true })
	if _, err := cl.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first line", func() bool { return strings.Contains(readLog(t, c.logPath), "one") })
	if err := os.Rename(c.logPath, c.logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ReopenLog(ctx(t)); err != nil {
		t.Fatalf("reopen log: %v", err)
	}
	if err := cl.Attach(ctx(t), client.Streams{Stdin: strings.NewReader("go\n")}); err != nil {
		t.Fatalf("attach: %v", err)
	}
	if _, err := cl.Wait(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if old := logLines(t, readLog(t, c.logPath+".1")); len(old) != 1 || old[0][2] != "one" {
		t.Errorf("rotated log %q", old)
	}
	if cur := logLines(t, readLog(t, c.logPath)); len(cur) != 1 || cur[0][2] != "two" {
		t.Errorf("reopened log %q", cur)
	}
	c.finish(t, cl)
}

func TestOOMKilled(t *testing.T) {
	// tail keeps the last line of /dev/zero, which never ends: it grows
	// until the 8 MiB limit kills it.
	c := newCtr(t, false, "tail", "/dev/zero")
	limit := int64(8 << 20)
	c.spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	cl := c.spawn(t, nil)
	if _, err := cl.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	exit, err := cl.Wait(ctx(t))
	if err != nil || !exit.OOMKilled || exit.Code != 137 {
		t.Fatalf("wait = %+v, %v; want OOM-killed 137", exit, err)
	}
	if fe, err := client.ReadExitFile(c.stateDir); err != nil || !fe.OOMKilled {
		t.Errorf("exit file = %+v, %v", fe, err)
	}
	c.finish(t, cl)
}

func TestSpawnErrors(t *testing.T) {
	c := newCtr(t, false, "true")
	c.writeBundle(t)
	o := c.opts()
	o.Bundle = "relative/bundle"
	if _, err := client.Spawn(ctx(t), o); !errdefs.IsInvalidArgument(err) {
		t.Errorf("relative bundle: %v", err)
	}
	o = c.opts()
	o.ID = ""
	if _, err := client.Spawn(ctx(t), o); !errdefs.IsInvalidArgument(err) {
		t.Errorf("no id: %v", err)
	}
	// The runtime's own error comes back; the shim is gone.
	c.spec.Root.Path = "/nonexistent-rootfs"
	c.writeBundle(t)
	_, err := client.Spawn(ctx(t), c.opts())
	if err == nil || !strings.Contains(err.Error(), "nonexistent-rootfs") {
		t.Fatalf("spawn with a missing rootfs: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(c.stateDir, "shim.pid")); err == nil {
		var pid int
		if _, err := fmtSscan(string(data), &pid); err == nil {
			reapStatus(t, pid) // exits 1 after a failed create
		}
	}
	c.assertNoRuncState(t)
	if _, err := client.Connect(ctx(t), c.stateDir); !errdefs.IsUnavailable(err) {
		t.Errorf("connect to a failed shim: %v", err)
	}
	if _, err := client.Connect(ctx(t), t.TempDir()); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("connect to an empty dir: %v", err)
	}
}

func TestTerminalExecAndDeleteCreated(t *testing.T) {
	c := newCtr(t, false, "sleep", "1000")
	cl := c.spawn(t, nil)
	// A second shim on the same state dir is refused.
	if _, err := client.Spawn(ctx(t), c.opts()); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("second spawn on one state dir: %v", err)
	}
	if _, err := cl.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// Exec with a terminal: size set through the resize channel, input
	// echoed by the pty, one merged output stream.
	resize := make(chan client.Size, 1)
	resize <- client.Size{Width: 120, Height: 30}
	close(resize)
	pr, pw := io.Pipe()
	var out syncBuffer
	done := make(chan error, 1)
	var exit client.Exit
	go func() {
		var err error
		exit, err = cl.Exec(ctx(t), client.ExecOptions{ID: "tty1", Tty: true, Stdin: true,
			Process: &specs.Process{Args: []string{"sh", "-c", "read l; stty size; echo got:$l; exit 7"}, Cwd: "/", Env: []string{"PATH=/bin"}}},
			client.Streams{Stdin: pr, Stdout: &out, Resize: resize})
		done <- err
	}()
	pw.Write([]byte("hi\n"))
	if err := <-done; err != nil {
		t.Fatalf("tty exec: %v", err)
	}
	pw.Close()
	if exit.Code != 7 || !strings.Contains(out.String(), "30 120") || !strings.Contains(out.String(), "got:hi") {
		t.Errorf("tty exec exit %d, output %q", exit.Code, out.String())
	}
	// An exec killed through KillExec.
	execDone := make(chan client.Exit, 1)
	go func() {
		e, _ := cl.Exec(ctx(t), client.ExecOptions{ID: "sleeper", Process: &specs.Process{Args: []string{"sleep", "1000"}, Cwd: "/", Env: []string{"PATH=/bin"}}}, client.Streams{})
		execDone <- e
	}()
	waitFor(t, "exec to start", func() bool {
		return cl.KillExec(ctx(t), "sleeper", syscall.SIGTERM) == nil
	})
	if e := <-execDone; e.Code != 128+15 {
		t.Errorf("killed exec exit = %+v", e)
	}
	if err := cl.Kill(ctx(t), syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Wait(ctx(t)); err != nil {
		t.Fatal(err)
	}
	c.finish(t, cl)

	// Delete of a created (never started) container: its init dies, the
	// exit is recorded, the shim shuts down.
	c2 := newCtr(t, false, "sleep", "1000")
	cl2 := c2.spawn(t, nil)
	pid, _ := cl2.ShimPid()
	if err := cl2.Delete(ctx(t)); err != nil {
		t.Fatalf("delete created: %v", err)
	}
	if st, err := cl2.State(ctx(t)); err != nil || st.Status != client.StatusStopped {
		t.Fatalf("state after delete = %+v, %v", st, err)
	}
	if _, err := client.ReadExitFile(c2.stateDir); err != nil {
		t.Errorf("exit file after delete: %v", err)
	}
	if err := cl2.Shutdown(ctx(t)); err != nil {
		t.Fatal(err)
	}
	reap(t, pid)
	c2.assertNoRuncState(t)
}

func TestLongStateDirWithTerminal(t *testing.T) {
	c := newCtr(t, true, "sh", "-c", "echo on a tty")
	// Longer than a unix socket path may be: the shim and client work around it.
	c.stateDir = filepath.Join(c.stateDir, strings.Repeat("d", 60), strings.Repeat("e", 60))
	cl := c.spawn(t, nil)
	if _, err := cl.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if exit, err := cl.Wait(ctx(t)); err != nil || exit.Code != 0 {
		t.Fatalf("wait = %+v, %v", exit, err)
	}
	if log := readLog(t, c.logPath); !strings.Contains(log, "stdout F on a tty\r") {
		t.Errorf("log %q", log)
	}
	cl.Close()
	if cl, err := client.Connect(ctx(t), c.stateDir); err != nil {
		t.Fatalf("reconnect through a long path: %v", err)
	} else {
		c.finish(t, cl)
		cl.Close()
	}
}

// Many exec and attach sessions leave the shim with the fds and files it
// had before (probes run ExecSync every few seconds for the pod's life).
func TestNoLeaksAcrossSessions(t *testing.T) {
	c := newCtr(t, false, "sleep", "1000")
	cl := c.spawn(t, func(o *client.SpawnOptions) { o.Stdin = true })
	if _, err := cl.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	shimPid, _ := cl.ShimPid()
	fds := func() int {
		ents, err := os.ReadDir(filepath.Join("/proc", fmt.Sprint(shimPid), "fd"))
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	files := func() []string {
		ents, _ := os.ReadDir(c.stateDir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	proc := &specs.Process{Args: []string{"echo", "x"}, Cwd: "/", Env: []string{"PATH=/bin"}}
	// One round first: lazily created runtime state (e.g. epoll) is not a leak.
	if _, err := cl.ExecSync(ctx(t), proc, 0); err != nil {
		t.Fatal(err)
	}
	before, beforeFiles := fds(), files()
	for i := 0; i < 20; i++ {
		if _, err := cl.ExecSync(ctx(t), proc, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.ExecSync(ctx(t), proc, time.Nanosecond); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		if _, err := cl.Exec(ctx(t), client.ExecOptions{ID: fmt.Sprint("e", i), Stdin: true, Process: proc},
			client.Streams{Stdin: strings.NewReader("in"), Stdout: io.Discard}); err != nil {
			t.Fatal(err)
		}
		// An attach that ends on its context (connected or not yet).
		actx, cancel := context.WithTimeout(ctx(t), 50*time.Millisecond)
		_ = cl.Attach(actx, client.Streams{Stdin: strings.NewReader("x")})
		cancel()
	}
	if _, err := cl.ExecSync(ctx(t), &specs.Process{Args: []string{"/missing"}, Cwd: "/"}, 0); err == nil {
		t.Fatal("exec of a missing binary succeeded")
	}
	// Closed attach connections are dropped by the shim asynchronously.
	waitFor(t, fmt.Sprintf("the shim's fd count to return to %d", before), func() bool { return fds() == before })
	if after := files(); strings.Join(after, " ") != strings.Join(beforeFiles, " ") {
		t.Errorf("state dir files %v, before %v", after, beforeFiles)
	}
	if err := cl.Kill(ctx(t), syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Wait(ctx(t)); err != nil {
		t.Fatal(err)
	}
	c.finish(t, cl)
}
