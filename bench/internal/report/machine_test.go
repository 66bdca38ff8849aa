package report

import (
	"os"
	"testing"
)

// The move is measured and changes nothing: the process stays in the cgroups
// it was in.
func TestCgroupMoveIsTimedAndChangesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to write cgroup.procs")
	}
	before, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	ms := cgroupMove()
	after, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	if ms <= 0 {
		t.Errorf("cgroupMove() = %v ms, want a measured time", ms)
	}
	if string(before) != string(after) {
		t.Errorf("cgroups changed:\n%s\nbecame\n%s", before, after)
	}
	if m := ThisMachine(); m.CgroupMoveMs <= 0 {
		t.Errorf("ThisMachine().CgroupMoveMs = %v", m.CgroupMoveMs)
	}
}
