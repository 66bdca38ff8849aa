package client_test

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"flotilla.dev/shim/client"
)

// copyRuntime copies the runc in PATH to dir, so the test can seal and
// replace a binary of its own.
func copyRuntime(t *testing.T, dir string) string {
	t.Helper()
	src, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	tmp := filepath.Join(dir, ".runc.tmp")
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
	dst := filepath.Join(dir, "runc")
	if err := os.Rename(tmp, dst); err != nil { // a new file, as a package upgrade writes it
		t.Fatal(err)
	}
	return dst
}

// exeOf is what /proc/PID/exe names and its inode (which copy it is).
func exeOf(t *testing.T, pid int) (string, uint64) {
	t.Helper()
	name, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/proc", strconv.Itoa(pid), "exe"), &st); err != nil {
		t.Fatal(err)
	}
	return name, st.Ino
}

// A created container's init is `runc init` waiting for start: the binary
// it runs is the one runc re-executed itself from.
func createdInitExe(t *testing.T, runtime string) (string, uint64) {
	t.Helper()
	c := newCtr(t, false, "sleep", "1000")
	cl := c.spawn(t, func(o *client.SpawnOptions) { o.Runtime = runtime })
	st, err := cl.State(ctx(t))
	if err != nil || st.Pid == 0 {
		t.Fatalf("state = %+v, %v", st, err)
	}
	name, ino := exeOf(t, st.Pid)
	if err := cl.Delete(ctx(t)); err != nil {
		t.Errorf("delete: %v", err)
	}
	return name, ino
}

func TestSealedRuntimeCopy(t *testing.T) {
	dir := t.TempDir()
	runtime := copyRuntime(t, dir)
	out, err := exec.Command(runtime, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "runc version 1.0.") && !strings.HasPrefix(string(out), "runc version 1.1.") {
		size, why, err := client.SealRuntime(runtime)
		if size != 0 || why == "" || err != nil {
			t.Fatalf("SealRuntime(%s) = %d, %q, %v; want no copy and a reason", out, size, why, err)
		}
		t.Skipf("runc copies itself only before 1.2; this is %s", out)
	}

	// Unsealed, runc 1.1 runs init from a copy of its own (memfd:runc_cloned).
	before, _ := createdInitExe(t, runtime)
	if strings.Contains(before, "flotilla-sealed") {
		t.Fatalf("before SealRuntime, runc init ran from %s", before)
	}

	fi, _ := os.Stat(runtime)
	size, why, err := client.SealRuntime(runtime)
	if err != nil || size != fi.Size() {
		t.Fatalf("SealRuntime = %d, %q, %v; want %d bytes", size, why, err, fi.Size())
	}
	// Sealed: the shim execs runc from the copy, and runc, finding itself a
	// sealed memfd, runs init from it without copying.
	first, ino1 := createdInitExe(t, runtime)
	if !strings.HasPrefix(first, "/memfd:flotilla-sealed:runc") {
		t.Fatalf("runc init runs from %s, want the sealed copy", first)
	}
	again, ino2 := createdInitExe(t, runtime)
	if again != first || ino2 != ino1 {
		t.Errorf("second container's init runs from %s (inode %d), want the same copy as the first (%d)", again, ino2, ino1)
	}

	// The client's own runtime calls (exec) run from it too: the
	// `runc exec` process lives as long as the exec.
	c := newCtr(t, false, "sleep", "1000")
	cl := c.spawn(t, func(o *client.SpawnOptions) { o.Runtime = runtime })
	if _, err := cl.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := cl.Exec(ctx(t), client.ExecOptions{ID: "sealed", Process: &specs.Process{Args: []string{"sleep", "1000"}, Cwd: "/", Env: []string{"PATH=/bin"}}}, client.Streams{})
		done <- err
	}()
	var execExe string
	waitFor(t, "the runc exec process", func() bool {
		for _, pid := range pidsWithArgs(c.id, "exec") {
			if name, ino := exeOf(t, pid); ino == ino1 {
				execExe = name
				return true
			}
		}
		return false
	})
	// The runc process can be seen before the client has recorded the
	// session as started; until then KillExec refuses.
	waitFor(t, "KillExec to be accepted", func() bool {
		return cl.KillExec(ctx(t), "sealed", syscall.SIGKILL) == nil
	})
	if err := <-done; err != nil {
		t.Errorf("exec: %v", err)
	}
	if !strings.HasPrefix(execExe, "/memfd:flotilla-sealed:runc") {
		t.Errorf("runc exec ran from %s", execExe)
	}
	if err := cl.Kill(ctx(t), syscall.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Wait(ctx(t)); err != nil {
		t.Fatal(err)
	}
	c.finish(t, cl)

	// A replaced binary (an upgrade) gets a new copy at the next use.
	copyRuntime(t, dir)
	upgraded, ino3 := createdInitExe(t, runtime)
	if !strings.HasPrefix(upgraded, "/memfd:flotilla-sealed:runc") || ino3 == ino1 {
		t.Errorf("after the binary was replaced, runc init runs from %s (inode %d, old copy %d)", upgraded, ino3, ino1)
	}
}

// pidsWithArgs lists processes whose command line has all of args.
func pidsWithArgs(args ...string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		var pid int
		if _, err := fmtSscan(e.Name(), &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(string(b), "\x00")
		all := true
		for _, a := range args {
			found := false
			for _, x := range argv {
				found = found || x == a
			}
			all = all && found
		}
		if all {
			pids = append(pids, pid)
		}
	}
	return pids
}
