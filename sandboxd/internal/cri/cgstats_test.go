package cri

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	cgmanager "github.com/opencontainers/cgroups/manager"
)

// readCgroupUsage reads what opencontainers/cgroups' full statistics say
// for the same cgroup, only less of it: a process that wrote 8 MB through
// the page cache and then sleeps, so that little moves between the reads.
func TestReadCgroupUsageMatchesTheCgroupsLibrary(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	r, err := findCgroupRoots()
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/flotilla-test/cgstats-%d", os.Getpid())
	var dirs []string
	if r.unified {
		dirs = []string{filepath.Join(cgroupRoot, path)}
	} else {
		dirs = []string{filepath.Join(r.cpuacct, path), filepath.Join(r.memory, path)}
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "data")
	cmd := exec.Command("sh", "-c", "read _; dd if=/dev/zero of="+file+" bs=1M count=8 2>/dev/null; exec sleep 60")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		for _, d := range dirs {
			os.Remove(d)
			os.Remove(filepath.Dir(d)) // flotilla-test, when empty
		}
	})
	for _, d := range dirs { // before it writes, so the pages are charged here
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stdin.Write([]byte("go\n"))
	deadline := time.Now().Add(20 * time.Second)
	for {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
		if strings.TrimSpace(string(comm)) == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the test process never got to sleep")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// sleep's own start (loading, libc) still runs after the exec; on a
	// busy machine it can take a while, so wait for the CPU time to settle.
	got, err := readCgroupUsage(path)
	for err == nil {
		time.Sleep(50 * time.Millisecond)
		again, err2 := readCgroupUsage(path)
		settled := err2 == nil && again.CPUNanos == got.CPUNanos
		got, err = again, err2
		if settled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the test process's CPU time never settled")
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	m, err := cgmanager.New(&cgroups.Cgroup{Path: path, Resources: &cgroups.Resources{}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := m.GetStats()
	if err != nil {
		t.Fatal(err)
	}
	mem := st.MemoryStats
	want := cgUsage{CPUNanos: st.CpuStats.CpuUsage.TotalUsage, Memory: mem.Usage.Usage}
	if r.unified {
		want.InactiveFile, want.RSS, want.PageFaults, want.MajorFaults = mem.Stats["inactive_file"], mem.Stats["anon"], mem.Stats["pgfault"], mem.Stats["pgmajfault"]
	} else {
		want.InactiveFile, want.RSS, want.PageFaults, want.MajorFaults = mem.Stats["total_inactive_file"], mem.Stats["total_rss"], mem.Stats["total_pgfault"], mem.Stats["total_pgmajfault"]
	}
	// kernel objects (page tables, slab) keep the charge moving by a page
	// or two between reads; the rest is still
	diff := int64(got.Memory) - int64(want.Memory)
	if diff < -256<<10 || diff > 256<<10 {
		t.Errorf("memory usage %d, the library says %d", got.Memory, want.Memory)
	}
	got.Memory = want.Memory
	if got != want {
		t.Errorf("readCgroupUsage = %+v\n  the library says %+v", got, want)
	}
	if got.CPUNanos == 0 || got.Memory < 8<<20 || got.PageFaults == 0 {
		t.Errorf("usage %+v: want CPU time, 8 MB of memory and page faults", got)
	}
	if ws := got.WorkingSet(); ws != got.Memory-got.InactiveFile {
		t.Errorf("working set %d, want usage %d - inactive file %d", ws, got.Memory, got.InactiveFile)
	}

	if _, err := readCgroupUsage(path + "-gone"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing cgroup: %v, want not exist", err)
	}
}
