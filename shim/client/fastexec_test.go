package client_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"flotilla.dev/lib/timerslack"
	"flotilla.dev/shim/client"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// probe prints what the exec'd process got: user, groups, umask, limits,
// cwd, HOME, capabilities, no_new_privs, seccomp, oom_score_adj, which of
// the container's namespaces and cgroups it shares with the init, its open
// fds, and what a syscall the profile denies returns.
const probe = `id; umask; pwd; echo "HOME=$HOME"
grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status; cat /proc/self/oom_score_adj
echo "ppid $PPID"; ls /proc/self/fd
mkdir /tmp/denied 2>&1; echo "mkdir $?"; echo err >&2; exit 7`

// rootProbe compares the namespaces and cgroups with the init's (which
// only root may read).
const rootProbe = `for n in ipc mnt net pid uts cgroup; do [ "$(readlink /proc/self/ns/$n)" = "$(readlink /proc/1/ns/$n)" ] && echo "same $n"; done
[ "$(cat /proc/self/cgroup)" = "$(cat /proc/1/cgroup)" ] && echo "same cgroups"; grep -E '^Cap' /proc/self/status`

// TestFastExecMatchesRuntimeExec runs the same ExecSync in two identical
// containers, one through flotilla-shim exec and one through runc exec, and
// requires the same outcome, down to the capability sets, the seccomp filter
// and the cgroups.
func TestFastExecMatchesRuntimeExec(t *testing.T) {
	umask := uint32(0o027)
	oom := 500
	caps := []string{"CAP_KILL", "CAP_SETUID", "CAP_SETGID", "CAP_CHOWN"}
	errno := uint(13)
	setup := func(c *ctr) {
		c.spec.Process.OOMScoreAdj = &oom // runc exec applies the container's, not the exec's
		c.spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps,
			Inheritable: []string{"CAP_KILL"}, Ambient: []string{"CAP_KILL"}}
		c.spec.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &errno},
				{Names: []string{"personality"}, Action: specs.ActErrno,
					Args: []specs.LinuxSeccompArg{{Index: 0, Value: 8, Op: specs.OpEqualTo}}},
			},
		}
	}
	fast, runtime := newCtr(t, false, "sleep", "1000"), newCtr(t, false, "sleep", "1000")
	runtime.id += "-rt"
	setup(fast)
	setup(runtime)
	fcl := fast.spawn(t, nil)
	rcl := runtime.spawn(t, func(o *client.SpawnOptions) { o.RuntimeExecSync = true })
	for _, cl := range []*client.Client{fcl, rcl} {
		if _, err := cl.Start(ctx(t)); err != nil {
			t.Fatal(err)
		}
	}
	proc := func() *specs.Process {
		p := *fast.spec.Process
		p.Args = []string{"sh", "-c", probe}
		p.Cwd = "/tmp"
		p.Env = []string{"PATH=/bin", "A=b c"}
		p.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}, Umask: &umask}
		p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1024}}
		return &p
	}
	same := func(p *specs.Process) client.ExecSyncResult {
		t.Helper()
		got, err := fcl.ExecSync(ctx(t), p, 0)
		if err != nil {
			t.Fatal(err)
		}
		want, err := rcl.ExecSync(ctx(t), p, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Fast || want.Fast {
			t.Fatalf("fast path: %v and %v, want true and false", got.Fast, want.Fast)
		}
		if string(got.Stdout) != string(want.Stdout) || string(got.Stderr) != string(want.Stderr) || got.ExitCode != want.ExitCode {
			t.Fatalf("flotilla-shim exec gave exit %d\n%s\nstderr %q\nrunc exec gave exit %d\n%s\nstderr %q",
				got.ExitCode, got.Stdout, got.Stderr, want.ExitCode, want.Stdout, want.Stderr)
		}
		return got
	}
	// And the outcome is the one asked for, not just the same.
	has := func(res client.ExecSyncResult, lines ...string) {
		t.Helper()
		for _, line := range lines {
			if !strings.Contains(string(res.Stdout), line+"\n") {
				t.Errorf("exec output lacks %q:\n%s", line, res.Stdout)
			}
		}
	}
	got := same(proc())
	has(got, "uid=1000(user) gid=1000 groups=10,20", "/tmp", "HOME=/home/user",
		"NoNewPrivs:\t1", "Seccomp:\t2", "500", "ppid 0", "0\n1\n2\n3", "mkdir 1",
		"CapEff:\t0000000000000020", "CapBnd:\t00000000000000e1", "CapAmb:\t0000000000000020")
	if got.ExitCode != 7 || string(got.Stderr) != "err\n" {
		t.Errorf("exit %d stderr %q", got.ExitCode, got.Stderr)
	}
	// Rlimits as asked. (runc 1.1.5 gives soft = hard for RLIMIT_NOFILE: its
	// Go runtime raises the soft limit before it applies the process's.)
	lim := proc()
	lim.Args = []string{"sh", "-c", "ulimit -n; ulimit -Hn"}
	if res, err := fcl.ExecSync(ctx(t), lim, 0); err != nil || string(res.Stdout) != "512\n1024\n" {
		t.Errorf("rlimits: %q, %v", res.Stdout, err)
	}
	// No capabilities section: the container's (and never the shim's), as
	// with runc.
	bare := *fast.spec.Process
	bare.Capabilities = nil
	bare.Args = []string{"grep", "^CapEff", "/proc/self/status"}
	has(same(&bare), "CapEff:\t00000000000000e1")
	root := *fast.spec.Process
	root.Args = []string{"sh", "-c", rootProbe}
	has(same(&root), "same ipc", "same mnt", "same net", "same pid", "same uts", "same cgroup", "same cgroups",
		"CapEff:\t00000000000000e1")

	// A timeout kills the process; a missing binary is the runtime's error
	// (the shim starts nothing and runc reports it).
	res, err := fcl.ExecSync(ctx(t), &specs.Process{Args: []string{"sleep", "100"}, Cwd: "/", Env: []string{"PATH=/bin"}}, 300*time.Millisecond)
	if err != nil || !res.TimedOut || res.ExitCode != 137 || !res.Fast {
		t.Fatalf("timed out exec = %+v, %v", res, err)
	}
	if res, err := fcl.ExecSync(ctx(t), &specs.Process{Args: []string{"nonexistent"}, Cwd: "/", Env: []string{"PATH=/bin"}}, 0); err == nil || res.Fast {
		t.Errorf("exec of a missing binary = %+v, %v", res, err)
	}
	if left, _ := filepath.Glob(filepath.Join(fast.stateDir, "execsync-*")); len(left) != 0 {
		t.Errorf("exec sync files left: %v", left)
	}
	fast.killAndFinish(t, fcl)
	runtime.killAndFinish(t, rcl)
	if _, err := os.Stat(filepath.Join(fast.stateDir, "exec-seccomp.bpf")); err != nil {
		t.Errorf("compiled filter: %v", err)
	}
}

// An empty seccomp profile is no filter (runc loads none): the fast path
// still applies and the process has no filter either.
func TestFastExecEmptySeccompProfile(t *testing.T) {
	c := newCtr(t, false, "sleep", "1000")
	c.spec.Linux.Seccomp = &specs.LinuxSeccomp{}
	cl := c.spawn(t, nil)
	if _, err := cl.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	p := *c.spec.Process
	p.Args = []string{"grep", "^Seccomp:", "/proc/self/status"}
	res, err := cl.ExecSync(ctx(t), &p, 0)
	if err != nil || !res.Fast || string(res.Stdout) != "Seccomp:\t0\n" {
		t.Fatalf("exec = %+v (%q), %v", res, res.Stdout, err)
	}
	c.killAndFinish(t, cl)
}

// A daemon's timer slack (lib/timerslack) must not reach a container: its
// init and its exec'd processes, by the fast path and through runc, keep
// the slack the daemon inherited.
func TestContainersKeepInheritedTimerSlack(t *testing.T) {
	orig, err := timerslack.Current()
	if err != nil {
		t.Fatal(err)
	}
	const daemon = 333_000
	if err := timerslack.Set(daemon); err != nil {
		t.Fatal(err)
	}
	defer timerslack.Set(orig)
	fast, viaRuntime := newCtr(t, false, "sleep", "1000"), newCtr(t, false, "sleep", "1000")
	viaRuntime.id += "-rt"
	fcl := fast.spawn(t, nil)
	rcl := viaRuntime.spawn(t, func(o *client.SpawnOptions) { o.RuntimeExecSync = true })
	want := strconv.FormatInt(orig, 10)
	for _, cl := range []*client.Client{fcl, rcl} {
		pid, err := cl.Start(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/timerslack_ns", pid))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != want {
			t.Errorf("container init has timer slack %s, want the inherited %s (the daemon's is %d)", got, want, daemon)
		}
		p := *fast.spec.Process
		p.Args = []string{"cat", "/proc/self/timerslack_ns"}
		res, err := cl.ExecSync(ctx(t), &p, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(res.Stdout)); got != want {
			t.Errorf("exec (fast path %v) has timer slack %s, want the inherited %s", res.Fast, got, want)
		}
	}
	fast.killAndFinish(t, fcl)
	viaRuntime.killAndFinish(t, rcl)
}
