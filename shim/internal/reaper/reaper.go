// Package reaper starts child processes and collects the exit of every
// child of the shim, including processes reparented to it as a child
// subreaper (the container's init after `runc create`, detached execs).
//
// Invariant: all waiting goes through one wait4(-1) loop, so the shim never
// uses os/exec's Wait (which would race with it). An exit that arrives
// before anyone asked for it is kept until Watch claims it.
package reaper

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Exit is how a process ended: Code is the exit status, or 128+signal.
type Exit struct {
	Pid  int
	Code int32
	At   time.Time
}

const maxUnclaimed = 256

// Reaper dispatches child exits to watchers.
type Reaper struct {
	mu        sync.Mutex
	watchers  map[int][]chan Exit
	unclaimed map[int]Exit
}

// New makes the calling process a child subreaper and starts the reap loop
// (one goroutine, woken by SIGCHLD).
func New() (*Reaper, error) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", err)
	}
	r := &Reaper{watchers: map[int][]chan Exit{}, unclaimed: map[int]Exit{}}
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, unix.SIGCHLD)
	go func() {
		for range ch {
			r.reap()
		}
	}()
	r.reap() // children that exited before Notify
	return r, nil
}

func (r *Reaper) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		e := Exit{Pid: pid, At: time.Now()}
		switch {
		case ws.Exited():
			e.Code = int32(ws.ExitStatus())
		case ws.Signaled():
			e.Code = 128 + int32(ws.Signal())
		default:
			continue // stopped/continued: not an exit
		}
		r.deliver(e)
	}
}

func (r *Reaper) deliver(e Exit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ws, ok := r.watchers[e.Pid]; ok {
		delete(r.watchers, e.Pid)
		for _, w := range ws {
			w <- e
		}
		return
	}
	if len(r.unclaimed) >= maxUnclaimed {
		for pid := range r.unclaimed {
			delete(r.unclaimed, pid)
			break
		}
	}
	r.unclaimed[e.Pid] = e
}

// Watch returns a channel that receives pid's exit once (immediately when
// it was already reaped).
func (r *Reaper) Watch(pid int) <-chan Exit {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.watchLocked(pid)
}

func (r *Reaper) watchLocked(pid int) chan Exit {
	ch := make(chan Exit, 1)
	if e, ok := r.unclaimed[pid]; ok {
		delete(r.unclaimed, pid)
		ch <- e
		return ch
	}
	r.watchers[pid] = append(r.watchers[pid], ch)
	return ch
}

// Start starts argv[0] (an absolute path) with files as fds 0, 1, 2... and
// returns its pid and a channel receiving its exit.
func (r *Reaper) Start(argv []string, dir string, files []*os.File) (int, <-chan Exit, error) {
	fds := make([]uintptr, len(files))
	for i, f := range files {
		fds[i] = f.Fd()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(argv[0], argv, &syscall.ProcAttr{Dir: dir, Env: os.Environ(), Files: fds})
	if err != nil {
		return 0, nil, &os.PathError{Op: "fork/exec", Path: argv[0], Err: err}
	}
	return pid, r.watchLocked(pid), nil
}
