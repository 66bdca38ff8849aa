package client_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"flotilla.dev/shim/client"
)

// runcRecorder writes a runtime named runc that records each call's
// arguments in calls and runs the real runc.
func runcRecorder(t *testing.T) (runtime, calls string) {
	t.Helper()
	real, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	runtime = filepath.Join(dir, "runc")
	script := "#!/bin/sh\necho \"$*\" >>" + calls + "\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(runtime, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return runtime, calls
}

// runtimeCalls lists the runtime calls in the calls log (runcRecorder) that
// have the word sub, e.g. "delete".
func runtimeCalls(t *testing.T, log, sub string) []string {
	t.Helper()
	b, _ := os.ReadFile(log)
	var calls []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(" "+l+" ", " "+sub+" ") {
			calls = append(calls, l)
		}
	}
	return calls
}

func ranStart(t *testing.T, calls, id string) bool {
	t.Helper()
	data, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasSuffix(l, " start "+id) {
			return true
		}
	}
	return false
}

func runcStatus(t *testing.T, c *ctr) string {
	t.Helper()
	out, err := exec.Command("runc", "--root", c.runcRoot, "state", c.id).Output()
	if err != nil {
		t.Fatalf("runc state: %v", err)
	}
	var st struct{ Status string }
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	return st.Status
}

// With runc, Start releases runc init through its exec fifo without running
// `runc start`; runc then sees the container as running, as after its own
// start. --start-via-runtime runs `runc start`.
func TestStartWithoutRuntime(t *testing.T) {
	for _, viaRuntime := range []bool{false, true} {
		name := "fifo"
		if viaRuntime {
			name = "runtime"
		}
		t.Run(name, func(t *testing.T) {
			runtime, calls := runcRecorder(t)
			c := newCtr(t, false, "sh", "-c", "echo started; exec sleep 60")
			cl := c.spawn(t, func(o *client.SpawnOptions) { o.Runtime = runtime; o.RuntimeStart = viaRuntime })
			fifo := filepath.Join(c.runcRoot, c.id, "exec.fifo")
			if _, err := os.Stat(fifo); err != nil {
				t.Fatalf("runc's exec fifo after create: %v", err)
			}
			if s := runcStatus(t, c); s != "created" {
				t.Fatalf("runc state after create: %s", s)
			}
			st, _ := cl.State(ctx(t))
			pid, err := cl.Start(ctx(t))
			if err != nil || pid != st.Pid {
				t.Fatalf("start = %d, %v (init %d)", pid, err, st.Pid)
			}
			if got := ranStart(t, calls, c.id); got != viaRuntime {
				t.Errorf("runc start ran: %v, want %v", got, viaRuntime)
			}
			if _, err := os.Stat(fifo); !os.IsNotExist(err) {
				t.Errorf("exec fifo after start: %v, want gone", err)
			}
			if s := runcStatus(t, c); s != "running" {
				t.Errorf("runc state after start: %s, want running", s)
			}
			waitFor(t, "the container's output", func() bool { return strings.Contains(readLog(t, c.logPath), "started") })
			// The shell echoes before it execs sleep, so the output can
			// come before init's comm changes.
			waitFor(t, "init to exec sleep", func() bool {
				comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
				return strings.TrimSpace(string(comm)) == "sleep"
			})
			if _, err := cl.Start(ctx(t)); err == nil {
				t.Error("second start succeeded")
			}
			if err := cl.Kill(ctx(t), 9, false); err != nil {
				t.Fatal(err)
			}
			if exit, err := cl.Wait(ctx(t)); err != nil || exit.Code != 137 {
				t.Fatalf("wait = %+v, %v", exit, err)
			}
			c.finish(t, cl)
		})
	}
}

// A start that hears nothing from runc init in --timeout-ms (here: its
// cgroup is frozen) fails with the runtime call's timeout text and leaves
// the container created.
func TestStartTimesOutOnFrozenInit(t *testing.T) {
	c := newCtr(t, false, "sleep", "60")
	cl := c.spawn(t, func(o *client.SpawnOptions) { o.Timeout = 1500 * time.Millisecond })
	freezer := filepath.Join("/sys/fs/cgroup/freezer", cgroupParent, c.id, "freezer.state")
	if _, err := os.Stat(freezer); err != nil {
		t.Skipf("no cgroup v1 freezer here: %v", err)
	}
	if err := os.WriteFile(freezer, []byte("FROZEN"), 0o644); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			if err := os.WriteFile(freezer, []byte("THAWED"), 0o644); err != nil {
				t.Error(err)
			}
		}
	}
	defer thaw()
	began := time.Now()
	_, err := cl.Start(ctx(t))
	if err == nil || !strings.Contains(err.Error(), "runc start: timed out after 1500 ms") {
		t.Fatalf("start of a frozen container: %v, want the timeout", err)
	}
	if d := time.Since(began); d < 1400*time.Millisecond {
		t.Errorf("start gave up after %v, before its timeout", d)
	}
	st, err := cl.State(ctx(t))
	if err != nil || st.Status != client.StatusCreated || !strings.Contains(st.Message, "timed out") {
		t.Errorf("state after the failed start = %+v, %v", st, err)
	}
	thaw()
	c.killAndFinish(t, cl)
}
