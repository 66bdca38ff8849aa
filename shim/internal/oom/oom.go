// Package oom tells whether the kernel OOM-killed a process in a
// container's memory cgroup: cgroup v1 memory.oom_control (its oom_kill
// counter, and an eventfd registered through cgroup.event_control), cgroup
// v2 memory.events (oom_kill).
package oom

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Watcher watches one memory cgroup.
type Watcher struct {
	counterFile string // memory.oom_control (v1) or memory.events (v2)
	baseline    uint64
	hasCounter  bool
	event       atomic.Bool // v1 eventfd fired (an OOM happened)
	efd         *os.File
}

// CgroupRoot is where cgroup hierarchies are mounted.
var CgroupRoot = "/sys/fs/cgroup"

// Watch finds pid's memory cgroup and starts watching it.
func Watch(pid int) (*Watcher, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil, err
	}
	var v1, v2 string
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == "memory" {
				v1 = parts[2]
			}
		}
	}
	w := &Watcher{}
	switch {
	case v1 != "":
		dir := filepath.Join(CgroupRoot, "memory", v1)
		w.counterFile = filepath.Join(dir, "memory.oom_control")
		if err := w.registerEventfd(dir); err != nil {
			return nil, err
		}
	case v2 != "":
		w.counterFile = filepath.Join(CgroupRoot, v2, "memory.events")
		if _, err := os.Stat(w.counterFile); err != nil {
			w.counterFile = filepath.Join(CgroupRoot, "unified", v2, "memory.events")
		}
	default:
		return nil, fmt.Errorf("no memory cgroup for pid %d", pid)
	}
	w.baseline, w.hasCounter = w.counter()
	return w, nil
}

// registerEventfd asks the v1 memory controller to signal an eventfd on
// OOM; one goroutine waits on it (through the netpoller).
func (w *Watcher) registerEventfd(dir string) error {
	oc, err := os.Open(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return err
	}
	defer oc.Close()
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return os.NewSyscallError("eventfd", err)
	}
	efd := os.NewFile(uintptr(fd), "oom-eventfd")
	ctl := fmt.Sprintf("%d %d", fd, oc.Fd())
	if err := os.WriteFile(filepath.Join(dir, "cgroup.event_control"), []byte(ctl), 0); err != nil {
		efd.Close()
		return err
	}
	w.efd = efd
	go func() {
		var buf [8]byte
		for {
			if _, err := efd.Read(buf[:]); err != nil {
				return
			}
			// The eventfd also fires when the cgroup is removed: only an
			// existing cgroup reporting under_oom/oom_kill counts.
			if _, err := os.Stat(dir); err == nil {
				w.event.Store(true)
			} else {
				return
			}
		}
	}()
	return nil
}

func (w *Watcher) counter() (uint64, bool) {
	data, err := os.ReadFile(w.counterFile)
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == "oom_kill" {
			n, err := strconv.ParseUint(f[1], 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// Killed reports whether an OOM kill happened in the cgroup since Watch.
// Call it after the container's init exited and before the cgroup is
// removed (`runtime delete`).
func (w *Watcher) Killed() bool {
	if n, ok := w.counter(); ok && w.hasCounter {
		return n > w.baseline
	}
	return w.event.Load()
}

// Close stops watching.
func (w *Watcher) Close() error {
	if w.efd != nil {
		return w.efd.Close()
	}
	return nil
}
