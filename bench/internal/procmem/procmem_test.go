package procmem

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Run as a child with FLOTBENCH_HOG=<MiB>: touch that much private memory,
// say "ready" and wait for stdin to close.
func TestMain(m *testing.M) {
	if v := os.Getenv("FLOTBENCH_HOG"); v != "" {
		var mib int
		fmt.Sscan(v, &mib)
		buf := make([]byte, mib<<20)
		for i := 0; i < len(buf); i += 4096 {
			buf[i] = 1
		}
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n')
		buf[0]++
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// spawnHog starts this test binary under the name `name` (a symlink, so
// argv[0]'s basename is unique to the test) in dir, touching mib MiB.
func spawnHog(t *testing.T, name, dir string, mib int) *exec.Cmd {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, name)
	if _, err := os.Lstat(link); err != nil {
		if err := os.Symlink(self, link); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(link)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), fmt.Sprintf("FLOTBENCH_HOG=%d", mib))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("hog did not get ready: %q %v", line, err)
	}
	return cmd
}

func TestMeasureSumsSelectedProcesses(t *testing.T) {
	base := t.TempDir()
	name := fmt.Sprintf("fbhog%d", os.Getpid())
	inScope := filepath.Join(base, "scope-a")
	outScope := filepath.Join(base, "scope-b")
	for _, d := range []string{inScope, outScope} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	a := spawnHog(t, name, inScope, 24)
	b := spawnHog(t, name, inScope, 24)
	c := spawnHog(t, name, outScope, 8)

	procs, err := Snapshot("/proc")
	if err != nil {
		t.Fatal(err)
	}
	all := Selector{Names: []string{name}}.Select(procs)
	if len(all) != 3 {
		t.Fatalf("selected %d processes named %s, want 3", len(all), name)
	}
	scoped := Selector{Names: []string{"nomatch", name}, Scope: inScope}.Select(procs)
	if len(scoped) != 2 || scoped[0].PID != min(a.Process.Pid, b.Process.Pid) {
		t.Fatalf("scoped selection = %+v, want pids %d and %d", scoped, a.Process.Pid, b.Process.Pid)
	}
	u, err := Measure("/proc", scoped)
	if err != nil {
		t.Fatal(err)
	}
	if u.Procs != 2 || u.ByName[name] != 2 || u.PSSByName[name] != u.PSSKiB {
		t.Fatalf("usage = %+v", u)
	}
	// Each hog touched 24 MiB of private memory: RSS and PSS both count it.
	if u.RSSKiB < 2*24*1024 || u.PSSKiB < 2*24*1024 {
		t.Fatalf("usage %+v below the 48 MiB the hogs touched", u)
	}
	if u.PSSKiB > u.RSSKiB {
		t.Fatalf("PSS %d > RSS %d", u.PSSKiB, u.RSSKiB)
	}
	// The sum is the sum of the parts.
	var sumPSS int64
	for _, p := range scoped {
		pss, _, err := Rollup("/proc", p.PID)
		if err != nil {
			t.Fatal(err)
		}
		sumPSS += pss
	}
	if d := u.PSSKiB - sumPSS; d < -1024 || d > 1024 {
		t.Fatalf("sum PSS %d differs from parts %d", u.PSSKiB, sumPSS)
	}
	// Excluded pids are not counted; a process that exited is skipped.
	ex := Selector{Names: []string{name}, Exclude: map[int]bool{c.Process.Pid: true}}.Select(procs)
	if len(ex) != 2 {
		t.Fatalf("exclude: got %d processes", len(ex))
	}
	gone := &Proc{PID: 1 << 30, Name: name}
	if u2, err := Measure("/proc", []*Proc{gone}); err != nil || u2.Procs != 0 {
		t.Fatalf("missing process: %+v %v", u2, err)
	}
}

func TestLongNamesMatchTruncatedComm(t *testing.T) {
	s := Selector{Names: []string{"containerd-shim-runc-v2"}}
	if !s.nameMatches(&Proc{Name: "containerd-shim"}) || !s.nameMatches(&Proc{Name: "containerd-shim-runc-v2"}) {
		t.Fatal("long name must match the full argv[0] and the truncated comm")
	}
	if s.nameMatches(&Proc{Name: "containerd"}) {
		t.Fatal("containerd is not the shim")
	}
}
