package oci

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// capNames indexes capability names by number (linux/capability.h).
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
	"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK",
	"CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE",
	"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE",
	"CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
	"CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// CapSet is a set of capability names (CAP_...).
type CapSet []string

// Has reports whether c is in the set.
func (s CapSet) Has(c string) bool {
	for _, x := range s {
		if x == c {
			return true
		}
	}
	return false
}

// BoundingSet returns the capabilities in this process's bounding set
// (CapBnd): what "ALL" and privileged containers get.
func BoundingSet() (CapSet, error) { return capsFromStatus("/proc/self/status", "CapBnd:") }

// EffectiveSet returns this process's effective capabilities.
func EffectiveSet() (CapSet, error) { return capsFromStatus("/proc/self/status", "CapEff:") }

func capsFromStatus(path, field string) (CapSet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(rest), 16, 64)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", path, field, err)
			}
			return FromMask(mask), nil
		}
	}
	return nil, fmt.Errorf("%s: no %s line", path, field)
}

// FromMask converts a capability bitmask to names (unknown bits skipped).
func FromMask(mask uint64) CapSet {
	var out CapSet
	for i, n := range capNames {
		if mask&(1<<uint(i)) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// NormalizeCap turns "net_admin", "NET_ADMIN" or "CAP_NET_ADMIN" into
// "CAP_NET_ADMIN", and reports whether it is a known capability ("ALL" is
// returned as is).
func NormalizeCap(c string) (string, bool) {
	u := strings.ToUpper(strings.TrimSpace(c))
	if u == "ALL" {
		return u, true
	}
	if !strings.HasPrefix(u, "CAP_") {
		u = "CAP_" + u
	}
	for _, n := range capNames {
		if n == u {
			return u, true
		}
	}
	return u, false
}
