package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"flotilla.dev/shim/client"
	"flotilla.dev/shim/testbuild"
)

// Shared by every test: a shim binary, a read-only busybox rootfs and a
// test-only cgroup parent.
var (
	shimBin      string
	rootfs       string
	cgroupParent = fmt.Sprintf("flotilla-shim-test-%d", os.Getpid())
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(spawnerHelper())
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Println("shim client tests need root and runc; skipping")
		return 0
	}
	if _, err := exec.LookPath("runc"); err != nil {
		fmt.Println("runc not found; skipping")
		return 0
	}
	tmp, err := os.MkdirTemp("", "shim-test-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(tmp)
	shimBin = filepath.Join(tmp, "flotilla-shim")
	if err := testbuild.Build(shimBin); err != nil {
		fmt.Println(err)
		return 1
	}
	rootfs = filepath.Join(tmp, "rootfs")
	if err := buildRootfs(rootfs); err != nil {
		fmt.Println("build rootfs:", err)
		return 1
	}
	// Orphaned shims are reparented to this process, which reaps them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		panic(err)
	}
	code := m.Run()
	for _, c := range []string{"memory", "pids", "cpu", "cpuacct", "cpuset", "blkio", "devices", "freezer", "systemd", "unified"} {
		os.Remove(filepath.Join("/sys/fs/cgroup", c, cgroupParent))
	}
	return code
}

// buildRootfs copies busybox (and, when it is dynamic, its libraries) with
// applet symlinks.
func buildRootfs(dir string) error {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		return err
	}
	files := []string{bb}
	if out, err := exec.Command("ldd", bb).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if strings.HasPrefix(f, "/") {
				files = append(files, f)
			}
		}
	}
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, f)
		if f == bb {
			dst = filepath.Join(dir, "bin/busybox")
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			return err
		}
	}
	// uid 1000's home for exec's HOME default
	if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n"), 0o644); err != nil {
		return err
	}
	for _, a := range []string{"sh", "echo", "sleep", "cat", "tail", "head", "stty", "printf", "true", "false", "id", "grep", "readlink", "ls", "mkdir", "pwd"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			return err
		}
	}
	return nil
}

type ctr struct {
	id       string
	bundle   string
	stateDir string
	runcRoot string
	logPath  string
	spec     *specs.Spec
}

// newCtr writes a bundle running args in the shared rootfs.
func newCtr(t *testing.T, tty bool, args ...string) *ctr {
	t.Helper()
	dir := t.TempDir()
	id := fmt.Sprintf("shimtest-%d-%s", os.Getpid(), strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
	c := &ctr{
		id: id, bundle: filepath.Join(dir, "bundle"), stateDir: filepath.Join(dir, "state"),
		runcRoot: filepath.Join(dir, "runc"), logPath: filepath.Join(dir, "ctr.log"),
	}
	c.spec = &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: rootfs, Readonly: true},
		Hostname: "shimtest",
		Process: &specs.Process{
			Terminal: tty, Args: args, Cwd: "/",
			Env:  []string{"PATH=/bin", "TERM=xterm"},
			User: specs.User{UID: 0, GID: 0},
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  []string{"CAP_KILL", "CAP_SETUID", "CAP_SETGID"},
				Effective: []string{"CAP_KILL", "CAP_SETUID", "CAP_SETGID"},
				Permitted: []string{"CAP_KILL", "CAP_SETUID", "CAP_SETGID"},
			},
			NoNewPrivileges: true,
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "size=16m"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: "/" + cgroupParent + "/" + id,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
			Resources:     &specs.LinuxResources{},
			MaskedPaths:   []string{"/proc/kcore"},
			ReadonlyPaths: []string{"/proc/sys"},
		},
	}
	t.Cleanup(func() { c.forceCleanup(t) })
	return c
}

func (c *ctr) writeBundle(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll(c.bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c.spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.bundle, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (c *ctr) opts() client.SpawnOptions {
	return client.SpawnOptions{
		ID: c.id, Bundle: c.bundle, StateDir: c.stateDir, RuntimeRoot: c.runcRoot,
		LogPath: c.logPath, Terminal: c.spec.Process.Terminal, ShimBinary: shimBin, Timeout: 30 * time.Second,
	}
}

func (c *ctr) spawn(t *testing.T, mod func(*client.SpawnOptions)) *client.Client {
	t.Helper()
	c.writeBundle(t)
	o := c.opts()
	if mod != nil {
		mod(&o)
	}
	cl, err := client.Spawn(ctx(t), o)
	if err != nil {
		t.Fatalf("spawn: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// finish deletes the container, shuts the shim down, reaps it and checks
// nothing is left: no shim, no runc state.
func (c *ctr) finish(t *testing.T, cl *client.Client) {
	t.Helper()
	pid, err := cl.ShimPid()
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Delete(ctx(t)); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := cl.Delete(ctx(t)); err != nil {
		t.Fatalf("second delete: %v", err)
	}
	if err := cl.Shutdown(ctx(t)); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	reap(t, pid)
	c.assertNoRuncState(t)
	if _, err := os.Stat(filepath.Join(c.stateDir, "shim.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("shim socket left behind: %v", err)
	}
}

// killAndFinish kills the container's init with SIGKILL, waits for its exit
// and then finishes the container (finish).
func (c *ctr) killAndFinish(t *testing.T, cl *client.Client) {
	t.Helper()
	if err := cl.Kill(ctx(t), 9, false); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Wait(ctx(t)); err != nil {
		t.Fatal(err)
	}
	c.finish(t, cl)
}

// reap waits for a shim reparented to this (subreaper) test process.
func reap(t *testing.T, pid int) {
	t.Helper()
	if ws := reapStatus(t, pid); !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("shim exit status %v", ws)
	}
}

func reapStatus(t *testing.T, pid int) syscall.WaitStatus {
	t.Helper()
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		t.Fatalf("wait for shim %d: %v", pid, err)
	}
	return ws
}

func (c *ctr) assertNoRuncState(t *testing.T) {
	t.Helper()
	out, err := exec.Command("runc", "--root", c.runcRoot, "list", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("runc list: %v: %s", err, out)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("runc still knows %q", s)
	}
}

// forceCleanup removes whatever a failed test left.
func (c *ctr) forceCleanup(t *testing.T) {
	exec.Command("runc", "--root", c.runcRoot, "delete", "--force", c.id).Run()
	if data, err := os.ReadFile(filepath.Join(c.stateDir, "shim.pid")); err == nil {
		var pid int
		fmt.Sscan(string(data), &pid)
		if pid > 0 && syscall.Kill(pid, 0) == nil {
			syscall.Kill(pid, syscall.SIGKILL)
			syscall.Wait4(pid, nil, 0, nil)
		}
	}
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// logLines parses CRI log lines into (stream, tag, text).
func logLines(t *testing.T, log string) [][3]string {
	t.Helper()
	var out [][3]string
	for _, l := range strings.Split(strings.TrimSuffix(log, "\n"), "\n") {
		f := strings.SplitN(l, " ", 4)
		if len(f) < 3 {
			t.Fatalf("bad log line %q", l)
		}
		if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil {
			t.Fatalf("bad timestamp in %q: %v", l, err)
		}
		if len(f) == 3 {
			f = append(f, "")
		}
		out = append(out, [3]string{f[1], f[2], f[3]})
	}
	return out
}

// waitFor polls cond (a file the container writes) until it holds or the
// test's deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fmtSscan(s string, v *int) (int, error) { return fmt.Sscan(s, v) }

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
