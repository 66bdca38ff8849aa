package cri

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"flotilla.dev/lib/cgroupfs"
	"golang.org/x/sys/unix"
)

// The CRI's container stats need a few numbers of a cgroup: CPU time,
// memory usage and four counters of memory.stat. Reading only those files
// (three per container) instead of every controller's statistics keeps
// ListContainerStats, which the kubelet calls for all containers every few
// seconds, cheap on a node with many pods.

// cgUsage is what the CRI reports of a container's cgroup.
type cgUsage struct {
	CPUNanos     uint64 // CPU time of all its tasks
	Memory       uint64 // memory charged, page cache included
	InactiveFile uint64 // page cache the kernel may reclaim first
	RSS          uint64 // anonymous memory
	PageFaults   uint64
	MajorFaults  uint64
}

// WorkingSet is the kubelet's working set: usage minus inactive file pages.
func (u cgUsage) WorkingSet() uint64 {
	if u.InactiveFile < u.Memory {
		return u.Memory - u.InactiveFile
	}
	return u.Memory
}

// cgroupRoots are the mount points the usage files live under.
type cgroupRoots struct {
	unified         bool   // cgroup v2: one hierarchy
	cpuacct, memory string // v1 hierarchies
	v1              []cgroupfs.Mount
}

var (
	rootsOnce sync.Once
	roots     cgroupRoots
	rootsErr  error
)

const cgroupRoot = "/sys/fs/cgroup"

func findCgroupRoots() (cgroupRoots, error) {
	rootsOnce.Do(func() {
		var st unix.Statfs_t
		if err := unix.Statfs(cgroupRoot, &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			roots = cgroupRoots{unified: true}
			return
		}
		if roots.v1, rootsErr = cgroupfs.Mounts(); rootsErr != nil {
			return
		}
		if roots.cpuacct, rootsErr = v1Mount(roots.v1, "cpuacct"); rootsErr == nil {
			roots.memory, rootsErr = v1Mount(roots.v1, "memory")
		}
	})
	return roots, rootsErr
}

// v1Mount finds where the v1 hierarchy carrying controller is mounted.
func v1Mount(mounts []cgroupfs.Mount, controller string) (string, error) {
	for _, m := range mounts {
		if !m.V2 && m.Has(controller) {
			return m.Point, nil
		}
	}
	return "", fmt.Errorf("no cgroup v1 hierarchy with the %s controller is mounted", controller)
}

// readCgroupUsage reads the usage of the cgroup at path (relative to each
// hierarchy's root, as in the OCI spec's cgroupsPath). A cgroup that is gone
// gives an error for which errors.Is(err, os.ErrNotExist) holds.
func readCgroupUsage(path string) (cgUsage, error) {
	r, err := findCgroupRoots()
	if err != nil {
		return cgUsage{}, err
	}
	var u cgUsage
	if r.unified {
		dir := filepath.Join(cgroupRoot, path)
		stat, err := readKeyed(filepath.Join(dir, "cpu.stat"))
		if err != nil {
			return u, err
		}
		u.CPUNanos = stat["usage_usec"] * 1000
		if u.Memory, err = readUint(filepath.Join(dir, "memory.current")); err != nil {
			return u, err
		}
		mem, err := readKeyed(filepath.Join(dir, "memory.stat"))
		if err != nil {
			return u, err
		}
		u.InactiveFile, u.RSS, u.PageFaults, u.MajorFaults = mem["inactive_file"], mem["anon"], mem["pgfault"], mem["pgmajfault"]
		return u, nil
	}
	if u.CPUNanos, err = readUint(filepath.Join(r.cpuacct, path, "cpuacct.usage")); err != nil {
		return u, err
	}
	mdir := filepath.Join(r.memory, path)
	if u.Memory, err = readUint(filepath.Join(mdir, "memory.usage_in_bytes")); err != nil {
		return u, err
	}
	mem, err := readKeyed(filepath.Join(mdir, "memory.stat"))
	if err != nil {
		return u, err
	}
	u.InactiveFile, u.RSS = mem["total_inactive_file"], mem["total_rss"]
	u.PageFaults, u.MajorFaults = mem["total_pgfault"], mem["total_pgmajfault"]
	return u, nil
}

func readUint(name string) (uint64, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}

// readKeyed reads a "key value" per line file (memory.stat, cpu.stat).
func readKeyed(name string) (map[string]uint64, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		k, v, ok := bytes.Cut(line, []byte{' '})
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			out[string(k)] = n
		}
	}
	return out, nil
}
