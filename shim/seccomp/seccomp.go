// Package seccomp compiles an OCI seccomp profile into the classic-BPF
// program runc 1.1.5 installs for a container's processes, so that the shim
// can load the very same filter into processes it execs into the container
// itself (ExecSync without `runc exec`).
//
// The translation follows runc 1.1.5 (libcontainer/specconv SetupSeccomp,
// libcontainer/seccomp InitSeccomp and patchbpf): libseccomp builds the
// filter, and a stub in front of it returns -ENOSYS for syscalls newer than
// any the profile names. Anything runc would do that this package does not
// reproduce fails with ErrUnsupported, and the caller falls back to runc.
//
// Where it differs from runc 1.1.5: profile flags (runc 1.1.5 refuses any;
// the three later runc versions accept are returned as seccomp(2) flags), and
// the stub's instruction layout (same decisions, fewer instructions; none at
// all where runc's stub would only jump into the filter). libseccomp's part
// is byte for byte what runc exports with the same libseccomp.
package seccomp

import (
	"errors"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// ErrUnsupported is wrapped in the error for profiles the fast path does not
// handle: user notification (listenerPath, SCMP_ACT_NOTIFY), unknown actions,
// operators, flags and architectures other than x86_64, x32 and i386.
var ErrUnsupported = errors.New("seccomp profile not supported by the fast exec path")

// The action strings runc accepts (libcontainer/seccomp/config.go). SCMP_ACT_KILL
// is the thread kill, as in runc's getAction. SCMP_ACT_NOTIFY is left out: it
// needs a listener fd handed to an agent, which only runc does.
var actions = map[specs.LinuxSeccompAction]libseccomp.ScmpAction{
	specs.ActKill:        libseccomp.ActKillThread,
	specs.ActKillThread:  libseccomp.ActKillThread,
	specs.ActKillProcess: libseccomp.ActKillProcess,
	specs.ActTrap:        libseccomp.ActTrap,
	specs.ActErrno:       libseccomp.ActErrno,
	specs.ActTrace:       libseccomp.ActTrace,
	specs.ActAllow:       libseccomp.ActAllow,
	specs.ActLog:         libseccomp.ActLog,
}

var operators = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual:     libseccomp.CompareNotEqual,
	specs.OpLessThan:     libseccomp.CompareLess,
	specs.OpLessEqual:    libseccomp.CompareLessOrEqual,
	specs.OpEqualTo:      libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
	specs.OpGreaterThan:  libseccomp.CompareGreater,
	specs.OpMaskedEqual:  libseccomp.CompareMaskedEqual,
}

var archs = map[specs.Arch]libseccomp.ScmpArch{
	specs.ArchX86_64: libseccomp.ArchAMD64,
	specs.ArchX32:    libseccomp.ArchX32,
	specs.ArchX86:    libseccomp.ArchX86,
}

var flagBits = map[specs.LinuxSeccompFlag]uint{
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

// Compile returns the program runc 1.1.5 would install for p: libseccomp's
// filter for the profile with runc's -ENOSYS stub in front, as raw struct
// sock_filter entries (8 bytes each, host byte order), and the seccomp(2)
// flags for p.Flags (SECCOMP_FILTER_FLAG_LOG, _SPEC_ALLOW,
// _WAIT_KILLABLE_RECV).
//
// A nil profile, or one with neither a default action nor syscalls, means no
// seccomp at all for runc; Compile then returns a nil program and no error.
func Compile(p *specs.LinuxSeccomp) (prog []byte, flags uint, err error) {
	if p == nil || (p.DefaultAction == "" && len(p.Syscalls) == 0) {
		return nil, 0, nil
	}
	if p.ListenerPath != "" {
		return nil, 0, fmt.Errorf("%w: listenerPath (user notification)", ErrUnsupported)
	}
	// runc 1.1.5 itself refuses any flag; these are the three later runc
	// versions pass on, so the fast path does too.
	for _, f := range p.Flags {
		bit, ok := flagBits[f]
		if !ok {
			return nil, 0, fmt.Errorf("%w: flag %q", ErrUnsupported, f)
		}
		flags |= bit
	}

	defAct, err := action(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, 0, fmt.Errorf("default action: %w", err)
	}
	filter, err := libseccomp.NewFilter(defAct)
	if err != nil {
		return nil, 0, fmt.Errorf("seccomp filter: %w", err)
	}
	defer filter.Release()

	var scmpArchs []libseccomp.ScmpArch
	for _, a := range p.Architectures {
		sa, ok := archs[a]
		if !ok {
			return nil, 0, fmt.Errorf("%w: architecture %q", ErrUnsupported, a)
		}
		if err := filter.AddArch(sa); err != nil {
			return nil, 0, fmt.Errorf("seccomp architecture %s: %w", a, err)
		}
		scmpArchs = append(scmpArchs, sa)
	}
	// Without it libseccomp's own loader would set no_new_privs; runc leaves
	// that to the process's noNewPrivileges setting. It does not change the
	// program, but keeps the filter's attributes those of runc's.
	if err := filter.SetNoNewPrivsBit(false); err != nil {
		return nil, 0, fmt.Errorf("seccomp filter: %w", err)
	}

	// runc expands every name of a rule into its own rule; names are
	// resolved (and unknown ones skipped) per rule.
	var names []string
	for _, call := range p.Syscalls {
		act, err := action(call.Action, call.ErrnoRet)
		if err != nil {
			return nil, 0, fmt.Errorf("syscall rule %v: %w", call.Names, err)
		}
		for _, name := range call.Names {
			names = append(names, name)
			if err := addRule(filter, name, act, defAct, call.Args); err != nil {
				return nil, 0, err
			}
		}
	}

	prog, err = exportBPF(filter)
	if err != nil {
		return nil, 0, err
	}
	if needsStub(p) {
		stub, err := enosysStub(lastSyscalls(scmpArchs, names))
		if err != nil {
			return nil, 0, err
		}
		prog = append(stub, prog...)
	}
	// The kernel refuses longer programs (BPF_MAXINSNS), runc's as well.
	if len(prog)/8 > 4096 {
		return nil, 0, fmt.Errorf("seccomp program of %d instructions is too long", len(prog)/8)
	}
	return prog, flags, nil
}

// action is runc's getAction: an errnoRet only counts for SCMP_ACT_ERRNO and
// SCMP_ACT_TRACE, both of which return EPERM without one. runc truncates it
// to int16 on the way into libseccomp; so does this.
func action(a specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	if a == specs.ActNotify {
		return 0, fmt.Errorf("%w: action %s", ErrUnsupported, a)
	}
	act, ok := actions[a]
	if !ok {
		return 0, fmt.Errorf("%w: action %q", ErrUnsupported, a)
	}
	if act == libseccomp.ActErrno || act == libseccomp.ActTrace {
		code := int16(unix.EPERM)
		if errnoRet != nil {
			code = int16(*errnoRet)
		}
		act = act.SetReturnCode(code)
	}
	return act, nil
}

// addRule is runc's matchCall for one syscall name.
func addRule(filter *libseccomp.ScmpFilter, name string, act, defAct libseccomp.ScmpAction, args []specs.LinuxSeccompArg) error {
	if name == "" {
		return errors.New("seccomp: empty syscall name")
	}
	// runc's SetupSeccomp converts every operator up front, before any rule
	// can be skipped.
	ops := make([]libseccomp.ScmpCompareOp, len(args))
	for i, a := range args {
		op, ok := operators[a.Op]
		if !ok {
			return fmt.Errorf("%w: operator %q", ErrUnsupported, a.Op)
		}
		ops[i] = op
	}
	// libseccomp refuses a rule whose action is the default one; runc skips it.
	if act == defAct {
		return nil
	}
	// A name this libseccomp does not know is a syscall the kernel may
	// lack too; runc ignores it rather than failing the container.
	nr, err := libseccomp.GetSyscallFromName(name)
	if err != nil {
		return nil
	}
	var conds []libseccomp.ScmpCondition
	var perIndex [6]int
	for i, a := range args {
		c, err := libseccomp.MakeCondition(a.Index, ops[i], a.Value, a.ValueTwo)
		if err != nil { // e.g. an index above 5
			return fmt.Errorf("seccomp syscall %s: %w", name, err)
		}
		perIndex[a.Index]++
		conds = append(conds, c)
	}
	if len(conds) == 0 {
		if err := filter.AddRule(nr, act); err != nil {
			return fmt.Errorf("seccomp syscall %s: %w", name, err)
		}
		return nil
	}
	// libseccomp cannot AND two conditions on one argument; runc then adds
	// each condition as a rule of its own, so they are ORed.
	split := false
	for _, n := range perIndex {
		split = split || n > 1
	}
	if !split {
		if err := filter.AddRuleConditional(nr, act, conds); err != nil {
			return fmt.Errorf("seccomp syscall %s: %w", name, err)
		}
		return nil
	}
	for _, c := range conds {
		if err := filter.AddRuleConditional(nr, act, []libseccomp.ScmpCondition{c}); err != nil {
			return fmt.Errorf("seccomp syscall %s: %w", name, err)
		}
	}
	return nil
}

// exportBPF returns libseccomp's program, written to a memfd (no pipe and
// reader goroutine needed, whatever its size).
func exportBPF(filter *libseccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("seccomp export: %w", err)
	}
	f := os.NewFile(uintptr(fd), "seccomp-bpf")
	defer f.Close()
	if err := filter.ExportBPF(f); err != nil {
		return nil, fmt.Errorf("seccomp export: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seccomp export: %w", err)
	}
	prog, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("seccomp export: %w", err)
	}
	if len(prog) == 0 || len(prog)%8 != 0 {
		return nil, fmt.Errorf("seccomp export: %d bytes is no BPF program", len(prog))
	}
	return prog, nil
}
