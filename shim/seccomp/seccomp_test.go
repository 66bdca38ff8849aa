package seccomp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"flotilla.dev/lib/syscalls"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The filters are loaded for real, in a child process: the test binary
// re-executed with childEnv set. The child loads the program it is given,
// performs the listed operations and prints "<op> <errno>" for each.
const childEnv = "FLOTILLA_SECCOMP_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		child()
		return
	}
	os.Exit(m.Run())
}

// child loads the filter from $SECCOMP_PROG with flags $SECCOMP_FLAGS, as the
// shim's C helper will, then runs the operations in $SECCOMP_OPS.
func child() {
	fail := func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...); os.Exit(100) }
	prog, err := os.ReadFile(os.Getenv("SECCOMP_PROG"))
	if err != nil {
		fail("%v", err)
	}
	flags, err := strconv.ParseUint(os.Getenv("SECCOMP_FLAGS"), 10, 32)
	if err != nil {
		fail("%v", err)
	}
	// No core file from a SIGSYS kill.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		fail("dumpable: %v", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fail("no_new_privs: %v", err)
	}
	// TSYNC: the Go runtime has several threads; the C helper is one thread
	// and does not need it. It does not change what the filter does.
	fprog := unix.SockFprog{Len: uint16(len(prog) / 8), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	if _, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		uintptr(flags)|unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog))); e != 0 {
		fail("seccomp: %v", e)
	}
	runtime.KeepAlive(prog)
	out := bufio.NewWriter(os.Stdout)
	for _, op := range strings.Fields(os.Getenv("SECCOMP_OPS")) {
		kind, arg, _ := strings.Cut(op, ":")
		var e syscall.Errno
		switch kind {
		case "mkdirat": // mkdirat:PATH
			e = errnoOf(unix.Mkdirat(unix.AT_FDCWD, arg, 0o700))
		case "sys": // sys:NR[:ARG0], a raw syscall with arg0 (default 0)
			nrs, a0s, _ := strings.Cut(arg, ":")
			nr, _ := strconv.ParseUint(nrs, 0, 64)
			var a0 uint64
			if a0s != "" {
				a0, _ = strconv.ParseUint(a0s, 0, 64)
			}
			_, _, e = unix.RawSyscall(uintptr(nr), uintptr(a0), 0, 0)
		case "exec": // exec:PATH[,ARG...], replaces the child
			out.Flush()
			argv := strings.Split(arg, ",")
			e = errnoOf(unix.Exec(argv[0], argv, []string{"PATH=/usr/bin:/bin"}))
		default:
			fail("unknown op %q", op)
		}
		fmt.Fprintf(out, "%s %d\n", op, int(e))
	}
	out.Flush()
	os.Exit(0)
}

func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	if err != nil {
		return syscall.EINVAL
	}
	return 0
}

// run compiles p, loads it in a child and performs ops there. It returns
// each op's errno and the child's exit status.
func run(t *testing.T, p *specs.LinuxSeccomp, ops ...string) (map[string]syscall.Errno, syscall.WaitStatus) {
	t.Helper()
	prog, flags, err := Compile(p)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return runProg(t, prog, flags, ops...)
}

func runProg(t *testing.T, prog []byte, flags uint, ops ...string) (map[string]syscall.Errno, syscall.WaitStatus) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(file, prog, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1", "SECCOMP_PROG="+file,
		"SECCOMP_FLAGS="+strconv.FormatUint(uint64(flags), 10), "SECCOMP_OPS="+strings.Join(ops, " "))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Exited() && ws.ExitStatus() == 100 {
		t.Fatalf("child: %s", stderr.String())
	}
	res := map[string]syscall.Errno{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		op, e, _ := strings.Cut(line, " ") // a line of an exec'd program: errno 0
		n, _ := strconv.Atoi(e)
		res[op] = syscall.Errno(n)
	}
	return res, ws
}

func errno(n uint) *uint { return &n }

func sys(nr uintptr, arg0 ...uint64) string {
	s := fmt.Sprintf("sys:%d", nr)
	if len(arg0) > 0 {
		s += fmt.Sprintf(":%#x", arg0[0])
	}
	return s
}

// goRuntime is what a Go child needs after its filter is loaded: output,
// threads, memory, signals, timers and exit. All below faccessat2 (439).
var goRuntime = []string{
	"read", "write", "close", "openat", "fstat", "newfstatat", "lseek", "pread64", "fcntl", "ioctl",
	"mmap", "munmap", "mprotect", "madvise", "brk", "mincore",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "tgkill", "tkill", "kill",
	"clone", "futex", "nanosleep", "clock_nanosleep", "clock_gettime", "gettimeofday", "sched_yield",
	"sched_getaffinity", "getpid", "gettid", "set_robust_list", "set_tid_address", "arch_prctl", "rseq",
	"epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_wait", "eventfd2", "pipe2", "getrandom",
	"prlimit64", "getrlimit", "setitimer", "timer_create", "timer_settime", "timer_delete",
	"exit", "exit_group", "wait4", "waitid", "uname", "readlinkat",
}

// denyDefault: SCMP_ACT_ERRNO by default (EPERM), the Go runtime allowed,
// plus extra rules.
func denyDefault(extra ...specs.LinuxSyscall) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls:      append([]specs.LinuxSyscall{{Names: goRuntime, Action: specs.ActAllow}}, extra...),
	}
}

func want(t *testing.T, res map[string]syscall.Errno, op string, e syscall.Errno) {
	t.Helper()
	got, ok := res[op]
	if !ok {
		t.Errorf("%s: no result (child output %v)", op, res)
	} else if got != e {
		t.Errorf("%s: errno %d (%v), want %d (%v)", op, int(got), got, int(e), e)
	}
}

func exitedZero(t *testing.T, ws syscall.WaitStatus) {
	t.Helper()
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("child: wait status %#x, want exit 0", uint32(ws))
	}
}

// Deny by default: what the profile does not allow gets EPERM, a rule's
// errnoRet is returned as given, and syscalls newer than the newest one the
// profile names get ENOSYS from runc's stub rather than EPERM.
func TestDenyDefault(t *testing.T) {
	dir := t.TempDir()
	p := denyDefault(
		specs.LinuxSyscall{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: errno(38)},
		specs.LinuxSyscall{Names: []string{"getuid"}, Action: specs.ActErrno, ErrnoRet: errno(uint(unix.EXDEV))},
	)
	mk := "mkdirat:" + filepath.Join(dir, "d")
	res, ws := run(t, p, mk, sys(unix.SYS_GETPID), sys(unix.SYS_GETPPID), sys(unix.SYS_GETUID),
		sys(unix.SYS_GETGID), sys(451), sys(462), sys(1000))
	exitedZero(t, ws)
	want(t, res, mk, unix.EPERM)
	want(t, res, sys(unix.SYS_GETPID), 0)
	want(t, res, sys(unix.SYS_GETPPID), unix.ENOSYS) // errnoRet 38 from the rule, getppid is below the stub's limit
	want(t, res, sys(unix.SYS_GETUID), unix.EXDEV)
	want(t, res, sys(unix.SYS_GETGID), unix.EPERM) // not allowed, older than the newest named syscall
	want(t, res, sys(451), unix.ENOSYS)            // cachestat: known to this kernel, newer than the profile
	want(t, res, sys(462), unix.ENOSYS)
	want(t, res, sys(1000), unix.ENOSYS) // unknown to the kernel too
	if _, err := os.Stat(filepath.Join(dir, "d")); err == nil {
		t.Error("mkdirat went through")
	}

	// Naming a newer syscall moves the stub's limit: cachestat (451) is then
	// filtered like any other syscall (EPERM), 462 still is not. mseal (462)
	// itself is unknown to libseccomp 2.5.4, so naming it changes nothing.
	p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"cachestat", "mseal"}, Action: specs.ActErrno})
	res, ws = run(t, p, sys(451), sys(462), sys(1000))
	exitedZero(t, ws)
	want(t, res, sys(451), unix.EPERM)
	want(t, res, sys(462), unix.ENOSYS)
	want(t, res, sys(1000), unix.ENOSYS)

	// x32 calls (the syscall instruction with bit 30 set in the number) are
	// checked against x32's own limit, whether or not this kernel runs x32.
	// That limit is above 512, where x32's own numbers of e.g. rt_sigaction
	// and waitid are, so 462 is filtered (EPERM) there.
	res, ws = run(t, p, sys(x32Bit|unix.SYS_MKDIRAT), sys(x32Bit|462), sys(x32Bit|1000))
	exitedZero(t, ws)
	want(t, res, sys(x32Bit|unix.SYS_MKDIRAT), unix.EPERM)
	want(t, res, sys(x32Bit|462), unix.EPERM)
	want(t, res, sys(x32Bit|1000), unix.ENOSYS)

	// defaultErrnoRet changes the default action's errno.
	p.DefaultErrnoRet = errno(uint(unix.EACCES))
	res, ws = run(t, p, sys(unix.SYS_GETGID))
	exitedZero(t, ws)
	want(t, res, sys(unix.SYS_GETGID), unix.EACCES)
}

// A conditional rule applies only when its condition holds; two conditions
// on the same argument are separate rules (OR), as runc makes them, while
// conditions on different arguments must all hold (AND).
func TestConditions(t *testing.T) {
	const query = 0xffffffff // personality(0xffffffff) only reads the persona
	p := denyDefault(specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActAllow,
		Args: []specs.LinuxSeccompArg{{Index: 0, Value: query, Op: specs.OpEqualTo}}})
	res, ws := run(t, p, sys(unix.SYS_PERSONALITY, query), sys(unix.SYS_PERSONALITY, 0))
	exitedZero(t, ws)
	want(t, res, sys(unix.SYS_PERSONALITY, query), 0)
	want(t, res, sys(unix.SYS_PERSONALITY, 0), unix.EPERM)

	// Same index twice: either value passes. (0 is PER_LINUX, which the child
	// has already.) ANDed, neither would.
	p = denyDefault(specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActAllow,
		Args: []specs.LinuxSeccompArg{
			{Index: 0, Value: query, Op: specs.OpEqualTo},
			{Index: 0, Value: 0, Op: specs.OpEqualTo},
		}})
	res, ws = run(t, p, sys(unix.SYS_PERSONALITY, query), sys(unix.SYS_PERSONALITY, 0), sys(unix.SYS_PERSONALITY, 8))
	exitedZero(t, ws)
	want(t, res, sys(unix.SYS_PERSONALITY, query), 0)
	want(t, res, sys(unix.SYS_PERSONALITY, 0), 0)
	want(t, res, sys(unix.SYS_PERSONALITY, 8), unix.EPERM)

	// Different indexes: ANDed in one rule. arg1 is 0 in every call here.
	p = denyDefault(specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActAllow,
		Args: []specs.LinuxSeccompArg{
			{Index: 0, Value: query, Op: specs.OpEqualTo},
			{Index: 1, Value: 1, Op: specs.OpEqualTo},
		}})
	res, ws = run(t, p, sys(unix.SYS_PERSONALITY, query))
	exitedZero(t, ws)
	want(t, res, sys(unix.SYS_PERSONALITY, query), unix.EPERM)
}

// SCMP_ACT_KILL_PROCESS kills the whole child with SIGSYS.
func TestKillProcess(t *testing.T) {
	p := denyDefault(specs.LinuxSyscall{Names: []string{"getppid"}, Action: specs.ActKillProcess})
	res, ws := run(t, p, sys(unix.SYS_GETPID), sys(unix.SYS_GETPPID))
	if !ws.Signaled() || ws.Signal() != unix.SIGSYS {
		t.Fatalf("child: wait status %#x, want killed by SIGSYS", uint32(ws))
	}
	if _, ok := res[sys(unix.SYS_GETPPID)]; ok {
		t.Error("getppid returned")
	}
}

// Allow by default with one denied syscall; no -ENOSYS stub then, as in runc.
// Names libseccomp does not know are skipped, not errors.
func TestAllowDefault(t *testing.T) {
	dir := t.TempDir()
	p := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"no_such_syscall", "mkdirat", "also_not_one"},
			Action: specs.ActErrno, ErrnoRet: errno(uint(unix.EPERM))}},
	}
	mk := "mkdirat:" + filepath.Join(dir, "d")
	res, ws := run(t, p, mk, sys(unix.SYS_GETPPID), sys(1000))
	exitedZero(t, ws)
	want(t, res, mk, unix.EPERM)
	want(t, res, sys(unix.SYS_GETPPID), 0)
	want(t, res, sys(1000), unix.ENOSYS) // from the kernel
}

// Profile flags become seccomp(2) flags the kernel accepts.
func TestFlags(t *testing.T) {
	p := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno}},
	}
	prog, flags, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if flags != unix.SECCOMP_FILTER_FLAG_LOG|unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW {
		t.Errorf("flags %#x", flags)
	}
	res, ws := runProg(t, prog, flags, sys(unix.SYS_GETPPID))
	exitedZero(t, ws)
	want(t, res, sys(unix.SYS_GETPPID), unix.EPERM)

	p.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}
	if _, flags, err = Compile(p); err != nil || flags != unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {
		t.Errorf("wait killable recv: flags %#x, %v", flags, err)
	}
}

// A profile shaped like sandboxd's built-in RuntimeDefault (the syscalls it
// denies a container without extra capabilities, lib/syscalls; sandboxd's
// TestDefaultSeccompCompilesForFastExec compiles the real profile): a
// shell-like workload runs, the denied syscalls get EPERM.
func TestRuntimeDefault(t *testing.T) {
	denied := syscalls.DeniedByDefault()
	p := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls:      []specs.LinuxSyscall{{Names: denied, Action: specs.ActErrno, ErrnoRet: errno(1)}},
	}
	res, ws := run(t, p, sys(unix.SYS_UNSHARE), sys(unix.SYS_PERSONALITY, 0xffffffff))
	exitedZero(t, ws)
	want(t, res, sys(unix.SYS_UNSHARE), unix.EPERM)
	want(t, res, sys(unix.SYS_PERSONALITY, 0xffffffff), unix.EPERM)

	for _, bin := range []string{"/bin/true", "/bin/sh"} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("%s: %v", bin, err)
		}
	}
	_, ws = run(t, p, "exec:/bin/true")
	exitedZero(t, ws)
	// A shell that forks, execs, redirects and pipes.
	res, ws = run(t, p, "exec:/bin/sh,-c,ls${IFS}/|cat>/dev/null&&echo${IFS}sh-ok")
	exitedZero(t, ws)
	want(t, res, "sh-ok", 0)
}

// What the fast path leaves to runc fails with ErrUnsupported.
func TestUnsupported(t *testing.T) {
	rule := func(r specs.LinuxSyscall) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{r}}
	}
	for name, p := range map[string]*specs.LinuxSeccomp{
		"listener":       {DefaultAction: specs.ActErrno, ListenerPath: "/run/agent.sock"},
		"notify rule":    rule(specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActNotify}),
		"notify default": {DefaultAction: specs.ActNotify},
		"unknown action": rule(specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: "SCMP_ACT_NOPE"}),
		"unknown operator": rule(specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_NOPE"}}}),
		"other arch":   {DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchAARCH64}},
		"unknown flag": {DefaultAction: specs.ActErrno, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC"}},
	} {
		if _, _, err := Compile(p); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: %v, want ErrUnsupported", name, err)
		}
	}

	// No profile, or an empty one, is no seccomp, as for runc.
	for _, p := range []*specs.LinuxSeccomp{nil, {}} {
		if prog, flags, err := Compile(p); prog != nil || flags != 0 || err != nil {
			t.Errorf("%+v: %d bytes, flags %#x, %v", p, len(prog), flags, err)
		}
	}
	// An argument index above 5 is an error for runc too, not a fallback.
	p := rule(specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActAllow,
		Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}})
	if _, _, err := Compile(p); err == nil || errors.Is(err, ErrUnsupported) {
		t.Errorf("index 6: %v", err)
	}
}

// The program loaded the way the shim's C helper loads it (testdata/loader.c:
// one thread, no TSYNC), with i386 syscalls (int $0x80) next to x86_64 ones:
// the -ENOSYS stub keeps a limit per architecture.
func TestCLoaderI386(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler")
	}
	dir := t.TempDir()
	loader := filepath.Join(dir, "loader")
	if out, err := exec.Command(cc, "-O2", "-Wall", "-Werror", "-o", loader, "testdata/loader.c").CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	// epoll_pwait is the newest named syscall: 281 on x86_64, 319 on i386.
	p := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"write", "exit_group", "getpid"}, Action: specs.ActAllow},
			{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: errno(uint(unix.EXDEV))},
			{Names: []string{"epoll_pwait"}, Action: specs.ActErrno, ErrnoRet: errno(uint(unix.EACCES))},
		},
	}
	prog, flags, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "prog")
	if err := os.WriteFile(file, prog, 0o600); err != nil {
		t.Fatal(err)
	}
	// i386 numbers: getpid 20, getppid 64, getgid 47, epoll_pwait 319.
	ops := []string{"i386:20", "i386:64", "i386:47", "i386:319", "i386:300", "i386:1000",
		"x86_64:39", "x86_64:110", "x86_64:104", "x86_64:281", "x86_64:300"}
	cmd := exec.Command(loader, append([]string{file, strconv.FormatUint(uint64(flags), 10)}, ops...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("loader: %v\n%s%s", err, out, stderr.String())
	}
	res := map[string]syscall.Errno{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		op, e, _ := strings.Cut(line, " ")
		n, _ := strconv.Atoi(e)
		res[op] = syscall.Errno(n)
	}
	want(t, res, "i386:20", 0)
	want(t, res, "i386:64", unix.EXDEV)
	want(t, res, "i386:47", unix.EPERM)
	want(t, res, "i386:319", unix.EACCES)
	want(t, res, "i386:300", unix.EPERM) // below i386's limit: the default action
	want(t, res, "i386:1000", unix.ENOSYS)
	want(t, res, "x86_64:39", 0)
	want(t, res, "x86_64:110", unix.EXDEV)
	want(t, res, "x86_64:104", unix.EPERM)
	want(t, res, "x86_64:281", unix.EACCES)
	want(t, res, "x86_64:300", unix.ENOSYS) // above x86_64's limit
}
