// Package syscalls holds the syscalls the built-in RuntimeDefault seccomp
// profile refuses: sandboxd builds the profile from them, and flotilla-shim's
// seccomp compiler is tested against the same list.
package syscalls

import "slices"

// deniedByDefault: kernel modules, kexec, reboot, clock and keyring changes,
// tracing and BPF, new mounts of namespaces and other host-wide operations a
// container has no business doing.
var deniedByDefault = []string{
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

// DeniedByDefault returns (a copy of) the syscalls RuntimeDefault refuses
// with EPERM to a container granted no capability that lifts a denial.
func DeniedByDefault() []string { return slices.Clone(deniedByDefault) }
