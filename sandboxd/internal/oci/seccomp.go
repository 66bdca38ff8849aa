package oci

import (
	"encoding/json"
	"fmt"
	"os"

	"flotilla.dev/lib/syscalls"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

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
// container holding caps: lib/syscalls' DeniedByDefault get EPERM, less those
// its capabilities lift; everything else is allowed. A stricter allow-list
// profile (e.g. Docker's) can be configured with seccomp_profile.
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
	for _, n := range syscalls.DeniedByDefault() {
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
