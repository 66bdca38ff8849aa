package seccomp

import (
	"encoding/binary"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// runc's -ENOSYS stub (libcontainer/seccomp/patchbpf). With a deny-by-default
// profile, a syscall the profile does not know would get the default action,
// typically EPERM, and glibc only falls back (clone3 → clone, faccessat2 →
// faccessat, ...) on ENOSYS. So syscalls numbered above the largest one the
// profile names, per architecture, return ENOSYS. The same facts, simpler
// code: the stub here is at most two short sections, so all its jumps fit in
// the 8-bit conditional offsets and it needs neither runc's long jumps nor
// its back-to-front construction.

// retENOSYS is SCMP_ACT_ERRNO(ENOSYS), i.e. SECCOMP_RET_ERRNO | ENOSYS.
const retENOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)

// x32Bit marks an x32 syscall number (__X32_SYSCALL_BIT); x32 processes run
// under AUDIT_ARCH_X86_64.
const x32Bit = 0x40000000

// Offsets into struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
)

// needsStub is runc's generatePatch condition: no stub for a permissive
// default action (ALLOW, LOG, and TRACE, whose tracer handles unknown
// syscalls itself), nor when defaultErrnoRet is ENOSYS already. runc 1.1.5
// compares defaultErrnoRet with SCMP_ACT_ERRNO(ENOSYS) = 0x50026, not with
// 38, so in practice defaultErrnoRet 38 still gets the stub (which then
// returns the same ENOSYS); that comparison is kept as it is.
func needsStub(p *specs.LinuxSeccomp) bool {
	if p.DefaultErrnoRet != nil && *p.DefaultErrnoRet == uint(retENOSYS) {
		return false
	}
	switch p.DefaultAction {
	case specs.ActAllow, specs.ActLog, specs.ActTrace:
		return false
	}
	return true
}

// lastSyscalls is runc's findLastSyscalls: for each architecture of the
// profile, the largest syscall number among all names of all rules (also
// those of rules skipped as redundant), 0 when none resolves (no stub
// section for that architecture then).
func lastSyscalls(arches []libseccomp.ScmpArch, names []string) map[libseccomp.ScmpArch]uint32 {
	last := map[libseccomp.ScmpArch]uint32{}
	for _, arch := range arches {
		var max libseccomp.ScmpSyscall // signed: libseccomp's pseudo-syscalls are negative
		for _, n := range names {
			nr, err := libseccomp.GetSyscallFromNameByArch(n, arch)
			if err == nil && nr > max {
				max = nr
			}
		}
		if max > 0 {
			last[arch] = uint32(max)
		}
	}
	return last
}

// insn is one instruction whose jump targets are labels, resolved once the
// stub is laid out. "" as a conditional target means the next instruction.
type insn struct {
	code   uint16
	jt, jf string
	k      uint32
	ja     string // target of an unconditional jump
	label  string // this instruction's own label
}

func ld(off uint32) insn { return insn{code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, k: off} }
func jeq(k uint32, jt, jf string) insn {
	return insn{code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, k: k, jt: jt, jf: jf}
}
func jgt(k uint32, jt, jf string) insn {
	return insn{code: unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, k: k, jt: jt, jf: jf}
}
func jset(k uint32, jt, jf string) insn {
	return insn{code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, k: k, jt: jt, jf: jf}
}
func ja(to string) insn        { return insn{code: unix.BPF_JMP | unix.BPF_JA, ja: to} }
func ret(k uint32) insn        { return insn{code: unix.BPF_RET | unix.BPF_K, k: k} }
func at(l string, i insn) insn { i.label = l; return i }

// enosysStub returns the stub for last; "filter" is the first instruction
// after it, i.e. libseccomp's program. Without any section it is empty, where
// runc emits a stub that only jumps into the filter.
func enosysStub(last map[libseccomp.ScmpArch]uint32) ([]byte, error) {
	x86, hasX86 := last[libseccomp.ArchX86]
	amd64, hasAMD64 := last[libseccomp.ArchAMD64]
	x32, hasX32 := last[libseccomp.ArchX32]
	if !hasX86 && !hasAMD64 && !hasX32 {
		return nil, nil
	}
	p := []insn{ld(offArch)}
	if hasAMD64 || hasX32 {
		p = append(p, jeq(unix.AUDIT_ARCH_X86_64, "x86_64", ""))
	}
	if hasX86 {
		p = append(p, jeq(unix.AUDIT_ARCH_I386, "i386", ""))
	}
	// Other architectures get libseccomp's bad-arch action in the filter.
	p = append(p, ja("filter"))
	if hasAMD64 || hasX32 {
		p = append(p, at("x86_64", ld(offNr)))
		switch {
		case hasAMD64 && hasX32:
			p = append(p,
				jset(x32Bit, "x32", ""),
				jgt(amd64, "enosys", "filter"),
				at("x32", jgt(x32, "enosys", "filter")))
		case hasAMD64: // x32 calls are left to the filter
			p = append(p, jset(x32Bit, "filter", ""), jgt(amd64, "enosys", "filter"))
		default: // x32 only; x86_64 calls are left to the filter
			p = append(p, jset(x32Bit, "", "filter"), jgt(x32, "enosys", "filter"))
		}
	}
	if hasX86 {
		p = append(p, at("i386", ld(offNr)), jgt(x86, "enosys", "filter"))
	}
	p = append(p, at("enosys", ret(retENOSYS)))
	return assemble(p)
}

// assemble resolves the labels (forward jumps only, as BPF requires) and
// encodes struct sock_filter entries in host byte order.
func assemble(p []insn) ([]byte, error) {
	pos := map[string]int{"filter": len(p)}
	for i, in := range p {
		if in.label != "" {
			pos[in.label] = i
		}
	}
	off := func(i int, l string) (uint32, error) {
		if l == "" {
			return 0, nil
		}
		t, ok := pos[l]
		if !ok || t <= i {
			return 0, fmt.Errorf("seccomp stub: bad jump to %q", l)
		}
		return uint32(t - i - 1), nil
	}
	out := make([]byte, 0, 8*len(p))
	for i, in := range p {
		jt, err := off(i, in.jt)
		if err != nil {
			return nil, err
		}
		jf, err := off(i, in.jf)
		if err != nil {
			return nil, err
		}
		k := in.k
		if in.ja != "" {
			if k, err = off(i, in.ja); err != nil {
				return nil, err
			}
		}
		if jt > 255 || jf > 255 {
			return nil, fmt.Errorf("seccomp stub: jump too long")
		}
		out = binary.NativeEndian.AppendUint16(out, in.code)
		out = append(out, uint8(jt), uint8(jf))
		out = binary.NativeEndian.AppendUint32(out, k)
	}
	return out, nil
}
