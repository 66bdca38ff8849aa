// Package cgroupfs lists the cgroup hierarchies mounted in this process's
// mount namespace, from /proc/self/mountinfo: sandboxd finds its stats files
// through them, the shim client the cgroups an exec joins.
package cgroupfs

import (
	"os"
	"strconv"
	"strings"
)

// Mount is one mounted cgroup hierarchy.
type Mount struct {
	Point   string   // where it is mounted
	Root    string   // the hierarchy's directory mounted there ("/" unless a cgroup namespace or bind mount)
	V2      bool     // cgroup2, the unified hierarchy
	Options []string // super options: rw, the v1 controllers, name=...
}

// Has reports whether the hierarchy carries the v1 controller (or name=X).
func (m Mount) Has(controller string) bool {
	for _, o := range m.Options {
		if o == controller {
			return true
		}
	}
	return false
}

// Mounts lists the cgroup and cgroup2 mounts of /proc/self/mountinfo.
func Mounts() ([]Mount, error) {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []Mount
	for _, line := range strings.Split(string(mi), "\n") {
		// id parent maj:min root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 || (g[0] != "cgroup" && g[0] != "cgroup2") {
			continue
		}
		out = append(out, Mount{Point: unescape(f[4]), Root: unescape(f[3]), V2: g[0] == "cgroup2",
			Options: strings.Split(g[2], ",")})
	}
	return out, nil
}

// unescape undoes mountinfo's octal escapes (\040 for a blank).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
