package cgroupfs

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		"/sys/fs/cgroup/cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
		`/mnt/with\040blank`:         "/mnt/with blank",
		`/tab\011and\134backslash`:   "/tab\tand\\backslash",
		`/not\9escape`:               `/not\9escape`,
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every listed hierarchy is a mounted directory, and this machine has either
// the unified hierarchy or a v1 one with the memory controller.
func TestMountsOfThisMachine(t *testing.T) {
	mounts, err := Mounts()
	if err != nil {
		t.Fatal(err)
	}
	var v2, memory bool
	for _, m := range mounts {
		if fi, err := os.Stat(m.Point); err != nil || !fi.IsDir() {
			t.Errorf("%+v: mount point %v", m, err)
		}
		v2 = v2 || m.V2
		memory = memory || (!m.V2 && m.Has("memory"))
	}
	if !v2 && !memory {
		t.Errorf("no cgroup2 and no memory hierarchy in %+v", mounts)
	}
}

// Every cgroup.procs file listed for this process exists and lists it.
func TestProcsFilesOfThisProcess(t *testing.T) {
	files, err := ProcsFiles(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	self := strconv.Itoa(os.Getpid())
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if !slices.Contains(strings.Fields(string(b)), self) {
			t.Errorf("%s does not list pid %s", f, self)
		}
	}
}
