package framework

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// State is what a fleet could leak, seen from the host.
type State struct {
	root   string
	Mounts map[string]bool // mount points under root (or /run/netns pins of it)
	Procs  map[string]bool // "pid cmdline" of processes mentioning root
}

// Snapshot records the host state relevant to a fleet in root.
func Snapshot(root string) State {
	s := State{root: root, Mounts: map[string]bool{}, Procs: map[string]bool{}}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 4 && strings.HasPrefix(fields[4], root+"/") {
				s.Mounts[fields[4]] = true
			}
		}
		f.Close()
	}
	ents, _ := os.ReadDir("/proc")
	self := fmt.Sprint(os.Getpid())
	for _, e := range ents {
		if e.Name() == self || e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(data) == 0 {
			continue
		}
		cmd := strings.ReplaceAll(strings.TrimRight(string(data), "\x00"), "\x00", " ")
		if strings.Contains(cmd, root+"/") || strings.HasSuffix(cmd, root) {
			s.Procs[e.Name()+" "+cmd] = true
		}
	}
	return s
}

// Leaks lists what exists now and did not before.
func (s State) Leaks(before State) []string {
	var out []string
	for m := range s.Mounts {
		if !before.Mounts[m] {
			out = append(out, "mount "+m)
		}
	}
	for p := range s.Procs {
		if !before.Procs[p] {
			out = append(out, "process "+p)
		}
	}
	return out
}

// BridgePorts lists the interfaces still attached to a bridge (veths of
// pods that were not torn down).
func BridgePorts(bridge string) []string {
	ents, _ := os.ReadDir(filepath.Join("/sys/class/net", bridge, "brif"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// RemoveBridge deletes a fleet's bridge (the CNI bridge plugin leaves it
// behind on DEL by design).
func RemoveBridge(name string) {
	if _, err := net.InterfaceByName(name); err == nil {
		_ = exec.Command("ip", "link", "del", name).Run()
	}
}
