package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"flotilla.dev/lib/caps"
	"flotilla.dev/lib/cgroupfs"
	"flotilla.dev/lib/procstat"
	"flotilla.dev/lib/timerslack"
	"flotilla.dev/shim/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fastExec is ExecSync's fast path: `flotilla-shim exec` (shim/c/exec.c)
// joins the container's cgroups and namespaces, sets the process up as runc's
// setns init does and runs the command: no runc, no Go start-ups in the
// way. It covers what the kubelet's exec probes and critest need (user,
// groups, capabilities, no_new_privs, seccomp, rlimits, oom_score_adj, cwd,
// env); a container or process needing anything else (a user namespace, an
// AppArmor or SELinux label, Intel RDT, a personality, a scheduler or I/O
// priority, seccomp notification, a runtime other than runc) goes through
// `runtime exec`, and so does every call the shim reports it could not
// start (nothing ran then, so running it again is safe).
type fastExec struct {
	shim, bundle string // from runtime.json; "" turns the fast path off

	mu  sync.Mutex
	pid int   // the init ctr was computed for; 0: not yet
	off error // why the container takes `runtime exec`
	ctr ctrExec
}

// ctrExec is what every exec plan of one container shares.
type ctrExec struct {
	pid      int
	start    uint64
	cgroups  []string
	filter   string // file of the compiled seccomp program; "" none
	scmpFlag uint
	oom      *int // the container's oom_score_adj
	// the container's, for an exec that names none (as runc does)
	caps    *specs.LinuxCapabilities
	rlimits []specs.POSIXRlimit
}

// errNoFast says a call takes `runtime exec` instead.
var errNoFast = errors.New("fast exec not possible")

// prepare computes, once per init pid, what every plan of the container
// shares; it returns why the fast path is off, if it is.
func (f *fastExec) prepare(stateDir, runtime string, pid int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pid == pid && pid != 0 {
		return f.off
	}
	f.pid = pid
	f.ctr, f.off = f.load(stateDir, runtime, pid)
	return f.off
}

// load is inspect with its error marked errNoFast.
func (f *fastExec) load(stateDir, runtime string, pid int) (ctrExec, error) {
	k, err := f.inspect(stateDir, runtime, pid)
	if err != nil {
		return ctrExec{}, fmt.Errorf("%w: %w", errNoFast, err)
	}
	return k, nil
}

// inspect reads the container's spec and init: what its plans share, or
// why it takes the runtime.
func (f *fastExec) inspect(stateDir, runtime string, pid int) (k ctrExec, err error) {
	k.pid = pid
	if f.shim == "" || f.bundle == "" {
		return k, errors.New("turned off")
	}
	if filepath.Base(runtime) != "runc" {
		return k, fmt.Errorf("runtime %s", runtime)
	}
	data, err := os.ReadFile(filepath.Join(f.bundle, "config.json"))
	if err != nil {
		return k, err
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return k, fmt.Errorf("spec: %w", err)
	}
	l := spec.Linux
	if l == nil {
		return k, errors.New("no linux section")
	}
	for _, ns := range l.Namespaces {
		if ns.Type == specs.UserNamespace || ns.Type == specs.TimeNamespace {
			return k, fmt.Errorf("%s namespace", ns.Type)
		}
	}
	if l.IntelRdt != nil || l.Personality != nil {
		return k, errors.New("intelRdt or personality")
	}
	if spec.Process != nil {
		k.oom, k.caps, k.rlimits = spec.Process.OOMScoreAdj, spec.Process.Capabilities, spec.Process.Rlimits
	}
	if l.Seccomp != nil {
		prog, flags, err := seccomp.Compile(l.Seccomp)
		if err != nil {
			return k, err
		}
		if len(prog) > 0 { // an empty profile is no filter, as with runc
			k.filter, k.scmpFlag = filepath.Join(stateDir, "exec-seccomp.bpf"), flags
			if err := os.WriteFile(k.filter, prog, 0o600); err != nil {
				return k, err
			}
		}
	}
	if k.start, err = startTime(pid); err != nil {
		return k, err
	}
	k.cgroups, err = cgroupfs.ProcsFiles(pid)
	return k, err
}

// plan renders the shim's exec plan for p: NUL-terminated key=value records.
func (f *fastExec) plan(p *specs.Process) ([]byte, error) {
	if p.Terminal || p.ApparmorProfile != "" || p.SelinuxLabel != "" || p.Scheduler != nil ||
		p.IOPriority != nil || p.ExecCPUAffinity != nil || p.User.Username != "" {
		return nil, fmt.Errorf("%w: process needs the runtime", errNoFast)
	}
	var b bytes.Buffer
	bad := false
	rec := func(k, v string) {
		if strings.IndexByte(v, 0) >= 0 {
			bad = true // the runtime reports this one
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
		b.WriteByte(0)
	}
	u := func(n uint64) string { return strconv.FormatUint(n, 10) }
	f.mu.Lock()
	k := f.ctr
	f.mu.Unlock()
	rec("pid", strconv.Itoa(k.pid))
	rec("start", u(k.start))
	for _, c := range k.cgroups {
		rec("cgroup", c)
	}
	if k.filter != "" {
		rec("seccomp", k.filter)
		rec("seccomp_flags", u(uint64(k.scmpFlag)))
	}
	if k.oom != nil { // the container's, as runc exec does
		rec("oom", strconv.Itoa(*k.oom))
	}
	rec("uid", u(uint64(p.User.UID)))
	rec("gid", u(uint64(p.User.GID)))
	// process.user.umask: runc 1.1 does not apply it to exec'd processes either.
	for _, g := range p.User.AdditionalGids {
		rec("group", u(uint64(g)))
	}
	if p.Cwd != "" {
		rec("cwd", p.Cwd)
	}
	if p.NoNewPrivileges {
		rec("nnp", "1")
	}
	// As runc: the process's capabilities, else the container's, else none
	// (never the shim's); its rlimits, else the container's.
	c, rl := p.Capabilities, p.Rlimits
	if c == nil {
		c = k.caps
	}
	if len(rl) == 0 {
		rl = k.rlimits
	}
	if c == nil {
		c = &specs.LinuxCapabilities{}
	}
	for _, set := range []struct {
		name  string
		names []string
	}{{"bounding", c.Bounding}, {"effective", c.Effective}, {"permitted", c.Permitted},
		{"inheritable", c.Inheritable}, {"ambient", c.Ambient}} {
		mask, err := capMask(set.names)
		if err != nil {
			return nil, err
		}
		rec("caps."+set.name, "0x"+strconv.FormatUint(mask, 16))
	}
	for _, r := range rl {
		res, ok := rlimits[r.Type]
		if !ok {
			return nil, fmt.Errorf("%w: rlimit %s", errNoFast, r.Type)
		}
		rec("rlimit", fmt.Sprintf("%d,%d,%d", res, r.Soft, r.Hard))
	}
	for _, e := range p.Env {
		rec("env", e)
	}
	for _, a := range p.Args {
		rec("arg", a)
	}
	if bad {
		return nil, fmt.Errorf("%w: a NUL byte", errNoFast)
	}
	return b.Bytes(), nil
}

// run runs the plan; errNoFast (wrapped) when the shim started nothing.
func (f *fastExec) run(ctx context.Context, plan []byte, timeout time.Duration) (ExecSyncResult, error) {
	planR, planW, err := os.Pipe()
	if err != nil {
		return ExecSyncResult{}, fmt.Errorf("%w: %w", errNoFast, err)
	}
	defer planR.Close()
	defer planW.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return ExecSyncResult{}, fmt.Errorf("%w: %w", errNoFast, err)
	}
	defer statusR.Close()
	defer statusW.Close()
	var out, errOut cappedBuffer
	cmd := exec.Command(f.shim, "exec")
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.ExtraFiles = []*os.File{planR, statusW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second // a background process may keep the output open
	if err := timerslack.Start(cmd); err != nil {
		return ExecSyncResult{}, fmt.Errorf("%w: %w", errNoFast, err)
	}
	planR.Close()
	statusW.Close()
	go func() {
		planW.Write(plan) // larger than a pipe's buffer when the environment is
		planW.Close()
	}()
	line, _ := bufio.NewReader(statusR).ReadString('\n')
	pid := 0
	if rest, ok := strings.CutPrefix(line, "started "); ok {
		pid, _ = strconv.Atoi(strings.TrimSpace(rest))
	}
	if pid <= 0 {
		cmd.Wait()
		if msg, ok := strings.CutPrefix(line, "error "); ok {
			return ExecSyncResult{}, fmt.Errorf("%w: %s", errNoFast, strings.TrimSpace(msg))
		}
		// No word from the shim: the command may have run, so it is not
		// run again.
		return ExecSyncResult{}, fmt.Errorf("flotilla-shim exec ended without a status (%s)", cmd.ProcessState)
	}
	var timedOut atomic.Bool
	if timeout > 0 {
		t := time.AfterFunc(timeout, func() {
			timedOut.Store(true)
			syscall.Kill(pid, syscall.SIGKILL)
		})
		defer t.Stop()
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			syscall.Kill(pid, syscall.SIGKILL)
		case <-done:
		}
	}()
	cmd.Wait()
	if ctx.Err() != nil {
		return ExecSyncResult{}, fmt.Errorf("exec in container: %w", ctx.Err())
	}
	code := cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		code = 128 + int(ws.Signal()) // the shim itself was killed
	}
	killed := timedOut.Load() && code == 128+int(syscall.SIGKILL)
	return ExecSyncResult{Stdout: out.b, Stderr: errOut.b, ExitCode: int32(code), TimedOut: killed, Fast: true}, nil
}

// startTime is field 22 of /proc/PID/stat: with the pid, it names one
// process for good.
func startTime(pid int) (uint64, error) {
	st, err := procstat.Read("/proc", pid)
	if err != nil {
		return 0, err
	}
	return st.Uint(22)
}

// capMask turns capability names into a bit mask.
func capMask(names []string) (uint64, error) {
	var m uint64
	for _, n := range names {
		c, ok := caps.Number(strings.ToUpper(n))
		if !ok {
			return 0, fmt.Errorf("%w: capability %s", errNoFast, n)
		}
		m |= 1 << c
	}
	return m, nil
}

var rlimits = map[string]int{
	"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4, "RLIMIT_RSS": 5,
	"RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10,
	"RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}
