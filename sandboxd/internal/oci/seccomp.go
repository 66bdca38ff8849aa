package oci

import (
	"encoding/json"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// deniedSyscalls are refused (EPERM) by the built-in RuntimeDefault profile:
// kernel modules, kexec, reboot, clock and keyring changes, tracing and BPF,
// new mounts of namespaces and other host-wide operations a container has
// no business doing. Everything else is allowed; a stricter allow-list
// profile (e.g. Docker's) can be configured with seccomp_profile.
var deniedSyscalls = []string{
	"acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
	"delete_module", "finit_module", "fsconfig", "fsmount", "fsopen", "fspick",
	"get_kernel_syms", "get_mempolicy", "init_module", "ioperm", "iopl", "kcmp",
	"kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie", "mbind", "mount",
	"mount_setattr", "move_mount", "move_pages", "name_to_handle_at", "nfsservctl",
	"open_by_handle_at", "open_tree", "perf_event_open", "personality", "pivot_root",
	"process_vm_readv", "process_vm_writev", "ptrace", "query_module", "quotactl",
	"quotactl_fd", "reboot", "request_key", "set_mempolicy", "setns", "settimeofday",
	"stime", "swapoff", "swapon", "_sysctl", "syslog", "umount", "umount2", "unshare",
	"uselib", "userfaultfd", "ustat", "vm86", "vm86old",
}

// allowedWith lifts denials for containers granted the capability, as
// Docker's profile does.
var allowedWith = map[string][]string{
	"CAP_SYS_ADMIN": {"mount", "umount", "umount2", "unshare", "setns", "pivot_root", "fsconfig", "fsmount",
		"fsopen", "fspick", "move_mount", "open_tree", "mount_setattr", "quotactl", "quotactl_fd",
		"name_to_handle_at", "open_by_handle_at", "lookup_dcookie", "perf_event_open", "bpf", "syslog"},
	"CAP_SYS_PTRACE": {"ptrace", "process_vm_readv", "process_vm_writev", "kcmp"},
	"CAP_SYS_TIME":   {"clock_adjtime", "clock_settime", "settimeofday", "stime"},
	"CAP_SYS_MODULE": {"init_module", "finit_module", "delete_module"},
	"CAP_SYS_BOOT":   {"reboot"},
	"CAP_SYS_RAWIO":  {"ioperm", "iopl"},
	"CAP_SYS_NICE":   {"mbind", "get_mempolicy", "set_mempolicy", "move_pages"},
	"CAP_SYS_PACCT":  {"acct"},
}

// DefaultSeccomp returns the built-in RuntimeDefault profile for a
// container holding caps.
func DefaultSeccomp(caps CapSet) *specs.LinuxSeccomp {
	lifted := map[string]bool{}
	for c, names := range allowedWith {
		if caps.Has(c) {
			for _, n := range names {
				lifted[n] = true
			}
		}
	}
	var denied []string
	for _, n := range deniedSyscalls {
		if !lifted[n] {
			denied = append(denied, n)
		}
	}
	errno := uint(1) // EPERM
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls:      []specs.LinuxSyscall{{Names: denied, Action: specs.ActErrno, ErrnoRet: &errno}},
	}
}

// LoadSeccomp reads a seccomp profile in the OCI LinuxSeccomp JSON form.
func LoadSeccomp(path string) (*specs.LinuxSeccomp, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	var p specs.LinuxSeccomp
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", path, err)
	}
	if p.DefaultAction == "" {
		return nil, fmt.Errorf("seccomp profile %s: no defaultAction", path)
	}
	return &p, nil
}
