// Package timerslack sets how late the kernel may wake a daemon's threads
// from their timed sleeps (prctl(2) PR_SET_TIMERSLACK), and starts the
// processes that become a user's containers with the slack the daemon was
// given instead.
//
// A busy Go process's sysmon thread sleeps 20 µs at a time. With 500 µs of
// slack the sleeps of the daemons and their CNI plugins in a burst of pod
// starts fell from ≈ 1,600 to ≈ 600 per pod, and on this machine (a VM,
// where each timer costs exits) the CPU the node spent per pod by 9 %
// (docs/performance.md, "Timer slack"). Go's own timers are rounded to
// milliseconds by epoll already; the slack does not leak into containers,
// whose processes keep the slack the daemon inherited (the kernel's 50 µs
// unless systemd's TimerSlackNSec= says otherwise).
package timerslack

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// inherited is the slack the process started with; 0 until Set ran.
var inherited atomic.Int64

// Current returns the calling thread's timer slack in nanoseconds.
func Current() (int64, error) {
	v, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	return int64(v), err
}

// Set gives every thread of the process a timer slack of ns nanoseconds
// (ns > 0); threads created afterwards inherit it from their creator. It
// remembers the slack the process started with for Start.
func Set(ns int64) error {
	if ns <= 0 {
		return fmt.Errorf("timer slack %d ns: must be positive", ns)
	}
	if cur, err := Current(); err == nil {
		inherited.CompareAndSwap(0, cur)
	}
	// The runtime may start a thread while the list is walked; a thread
	// made by one already changed inherits the new value, so walking
	// until a pass changes nothing covers every thread.
	for pass := 0; pass < 10; pass++ {
		changed, err := setAll(ns)
		if err != nil {
			return err
		}
		if !changed {
			return nil
		}
	}
	return errors.New("timer slack: threads kept appearing")
}

func setAll(ns int64) (changed bool, err error) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return false, fmt.Errorf("timer slack: %w", err)
	}
	want := strconv.FormatInt(ns, 10)
	for _, t := range tasks {
		// The per-thread file is /proc/TID/timerslack_ns (the task/
		// directories do not have one).
		path := "/proc/" + t.Name() + "/timerslack_ns"
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			continue // the thread has exited
		}
		if err != nil {
			return false, fmt.Errorf("timer slack: %w", err)
		}
		if strings.TrimSpace(string(b)) == want {
			continue
		}
		if err := os.WriteFile(path, []byte(want), 0); err != nil {
			if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
				continue
			}
			return false, fmt.Errorf("timer slack: %w", err)
		}
		changed = true
	}
	return changed, nil
}

// Start starts cmd from a thread whose slack is the one the process
// inherited, so cmd (a shim, a runtime, a process in a container) and its
// descendants get that slack and not the daemon's.
func Start(cmd *exec.Cmd) error {
	orig := inherited.Load()
	if orig <= 0 {
		return cmd.Start() // Set never ran: nothing to undo
	}
	// The child is forked from the calling thread and copies its slack.
	// (A thread the runtime happens to start from this one meanwhile
	// keeps the inherited slack: it costs a little of the saving, nothing
	// else.)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cur, err := Current()
	if err != nil || cur == orig {
		return cmd.Start()
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(orig), 0, 0, 0); err != nil {
		return cmd.Start()
	}
	err = cmd.Start()
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(cur), 0, 0, 0)
	return err
}

// Run is Start and then cmd.Wait.
func Run(cmd *exec.Cmd) error {
	if err := Start(cmd); err != nil {
		return err
	}
	return cmd.Wait()
}
