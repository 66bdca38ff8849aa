package oci

import (
	"testing"

	shimseccomp "flotilla.dev/shim/seccomp"
)

// flotilla-shim's ExecSync fast path loads a container's seccomp profile
// itself, compiled by shim/seccomp; a profile it cannot compile sends every
// exec of the container through `runc exec`. The built-in RuntimeDefault
// profile, with and without the capabilities that lift denials, must compile
// to a filter. (shim/seccomp's own tests load a profile of the same shape on
// the kernel.)
func TestDefaultSeccompCompilesForFastExec(t *testing.T) {
	for name, caps := range map[string]CapSet{
		"default caps":   {"CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_SETGID"},
		"CAP_SYS_ADMIN":  {"CAP_SYS_ADMIN"},
		"CAP_SYS_PTRACE": {"CAP_SYS_PTRACE", "CAP_SYS_TIME"},
	} {
		p := DefaultSeccomp(caps)
		prog, _, err := shimseccomp.Compile(p)
		if err != nil {
			t.Errorf("%s: Compile: %v", name, err)
			continue
		}
		if len(prog) == 0 || len(prog)%8 != 0 {
			t.Errorf("%s: program of %d bytes, want whole sock_filter entries", name, len(prog))
		}
	}
}
