package cgroupfs

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ProcsFiles lists the cgroup.procs files of every cgroup pid is in, one per
// mounted hierarchy (cgroup v1 controllers, named hierarchies and the v2
// unified one): joining them puts a process where runc's exec puts it.
func ProcsFiles(pid int) ([]string, error) {
	known := map[string]bool{}
	if data, err := os.ReadFile("/proc/cgroups"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
				known[f[0]] = true
			}
		}
	}
	all, err := Mounts()
	if err != nil {
		return nil, err
	}
	mounts := map[string][]Mount{} // sorted controller list ("" for v2) → mounts
	for _, m := range all {
		var key string
		if !m.V2 {
			var ctrls []string
			for _, o := range m.Options {
				if known[o] || strings.HasPrefix(o, "name=") {
					ctrls = append(ctrls, o)
				}
			}
			slices.Sort(ctrls)
			key = strings.Join(ctrls, ",")
		}
		mounts[key] = append(mounts[key], m)
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		ctrls := strings.Split(parts[1], ",")
		slices.Sort(ctrls)
		key := strings.Join(ctrls, ",")
		for _, m := range mounts[key] {
			rel, ok := strings.CutPrefix(parts[2], m.Root)
			if m.Root == "/" {
				rel, ok = parts[2], true
			}
			if !ok || (rel != "" && !strings.HasPrefix(rel, "/")) {
				continue
			}
			out = append(out, filepath.Join(m.Point, rel, "cgroup.procs"))
			break
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no cgroup of process %d is mounted here", pid)
	}
	return out, nil
}
