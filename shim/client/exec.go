package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"flotilla.dev/lib/ids"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"flotilla.dev/shim/internal/frame"
	"flotilla.dev/shim/internal/layout"
)

// maxExecOutput caps each ExecSync output stream.
const maxExecOutput = 16 << 20

// execSession is an interactive exec this client started (`runtime exec`
// runs as the client's child and waits for the process).
type execSession struct {
	pidFile string
	done    chan struct{} // closed once exit is set
	exit    Exit

	mu         sync.Mutex
	console    *os.File // the pty master (tty execs), nil once it closed
	runtimePid int      // the `runtime exec` process relaying the terminal
}

// pid returns the exec'd process's host pid once the runtime wrote it.
func (s *execSession) pid() int {
	return readPidFile(s.pidFile)
}

// readPidFile returns the pid in path, 0 until the runtime wrote it.
func readPidFile(path string) int {
	pid, _ := readPid(path)
	return pid
}

// running fails unless the container is running.
func (c *conn) running(ctx context.Context, what string) (State, error) {
	st, err := c.state(ctx)
	if err != nil {
		return st, err
	}
	if st.Status != StatusRunning {
		return st, fmt.Errorf("%s in container %s: it is %s: %w", what, c.rt.id, st.Status, errdefs.ErrFailedPrecondition)
	}
	return st, nil
}

// processFile writes the process JSON for `runtime exec --process`.
func (c *conn) processFile(prefix string, p *specs.Process) (proc, pid string, err error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", "", err
	}
	f, err := os.CreateTemp(c.stateDir, prefix+"-*.json")
	if err != nil {
		return "", "", err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", "", err
	}
	return f.Name(), strings.TrimSuffix(f.Name(), ".json") + ".pid", nil
}

// cappedBuffer keeps the first maxExecOutput bytes and drops the rest, so
// the process never blocks on a full pipe.
type cappedBuffer struct{ b []byte }

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := maxExecOutput - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// killWhenStarted sends sig to the process named by pidFile as soon as the
// runtime has written it, unless done closes first.
func killWhenStarted(pidFile string, sig syscall.Signal, done <-chan struct{}) {
	for {
		if pid := readPidFile(pidFile); pid > 0 {
			_ = syscall.Kill(pid, sig)
			return
		}
		select {
		case <-done:
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// killPidFile SIGKILLs the process named by pidFile, if it was written.
func killPidFile(pidFile string) {
	if pid := readPidFile(pidFile); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

func (c *conn) execSync(ctx context.Context, p *specs.Process, timeout time.Duration) (ExecSyncResult, error) {
	if p == nil || len(p.Args) == 0 {
		return ExecSyncResult{}, fmt.Errorf("exec sync: no command: %w", errdefs.ErrInvalidArgument)
	}
	if timeout < 0 {
		return ExecSyncResult{}, fmt.Errorf("exec sync: negative timeout: %w", errdefs.ErrInvalidArgument)
	}
	st, err := c.running(ctx, "exec sync")
	if err != nil {
		return ExecSyncResult{}, err
	}
	q := *p
	q.Terminal = false
	if c.fast.prepare(c.stateDir, c.rt.binary, st.Pid) == nil {
		plan, err := c.fast.plan(&q)
		if err == nil {
			res, err := c.fast.run(ctx, plan, timeout)
			if !errors.Is(err, errNoFast) {
				return res, err
			}
		}
	}
	procFile, pidFile, err := c.processFile("execsync", &q)
	if err != nil {
		return ExecSyncResult{}, err
	}
	defer os.Remove(procFile)
	defer os.Remove(pidFile)
	var out, errOut cappedBuffer
	done := make(chan struct{})
	defer close(done)
	var timedOut atomic.Bool
	if timeout > 0 {
		t := time.AfterFunc(timeout, func() {
			timedOut.Store(true)
			killWhenStarted(pidFile, syscall.SIGKILL, done)
		})
		defer t.Stop()
	}
	sio := &stdio{outW: &out, errW: &errOut, process: true, cancel: func() { killPidFile(pidFile) }}
	code, err := c.rt.runStatus(ctx, sio, "exec", "--process", procFile, "--pid-file", pidFile, c.rt.id)
	if err != nil {
		return ExecSyncResult{}, fmt.Errorf("exec in container %s: %w", c.rt.id, err)
	}
	// Timed out only when the timer's kill ended it: a process that exited
	// on its own just as the timer fired did not time out.
	killed := timedOut.Load() && code == 128+int(syscall.SIGKILL)
	return ExecSyncResult{Stdout: out.b, Stderr: errOut.b, ExitCode: int32(code), TimedOut: killed}, nil
}

func (c *conn) lookupExec(id string) (*execSession, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.execs[id]
	if !ok {
		return nil, fmt.Errorf("exec %s: %w", id, errdefs.ErrNotFound)
	}
	return s, nil
}

func (c *conn) killExec(id string, sig syscall.Signal) error {
	s, err := c.lookupExec(id)
	if err != nil {
		return err
	}
	select {
	case <-s.done:
		return nil
	default:
	}
	pid := s.pid()
	if pid <= 0 { // never signal 0 or -1
		return fmt.Errorf("kill exec %s: not started yet: %w", id, errdefs.ErrFailedPrecondition)
	}
	if err := syscall.Kill(pid, sig); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("kill exec %s: %w", id, err)
	}
	return nil
}

func (c *conn) resizeExec(id string, sz Size) error {
	s, err := c.lookupExec(id)
	if err != nil {
		return err
	}
	if err := s.resize(sz); err != nil {
		return fmt.Errorf("resize exec %s: %w", id, err)
	}
	return nil
}

func setWinsize(f *os.File, sz Size) error {
	return unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
}

// execKeep is how long a finished exec's exit stays for WaitExec.
const execKeep = time.Minute

func (c *conn) exec(ctx context.Context, o ExecOptions, s Streams) (Exit, error) {
	if o.Process == nil || len(o.Process.Args) == 0 {
		return Exit{}, fmt.Errorf("exec: no command: %w", errdefs.ErrInvalidArgument)
	}
	if !ids.Name(o.ID, 64) {
		return Exit{}, fmt.Errorf("exec id %q: want 1-64 letters, digits, '_', '.', '-', starting with a letter or digit: %w", o.ID, errdefs.ErrInvalidArgument)
	}
	if _, err := c.running(ctx, "exec"); err != nil {
		return Exit{}, err
	}
	q := *o.Process
	q.Terminal = o.Tty
	// A size already waiting is the terminal's size from its creation on:
	// the process may read it before the runtime relays any resize.
	var initial *Size
	if o.Tty && s.Resize != nil {
		select {
		case sz, ok := <-s.Resize:
			if ok {
				initial = &sz
				q.ConsoleSize = &specs.Box{Height: uint(sz.Height), Width: uint(sz.Width)}
			}
		default:
		}
	}
	procFile, pidFile, err := c.processFile("exec", &q)
	if err != nil {
		return Exit{}, err
	}
	defer os.Remove(procFile)
	defer os.Remove(pidFile)
	sess := &execSession{pidFile: pidFile, done: make(chan struct{})}
	c.mu.Lock()
	if _, ok := c.execs[o.ID]; ok {
		c.mu.Unlock()
		return Exit{}, fmt.Errorf("exec %s: %w", o.ID, errdefs.ErrAlreadyExists)
	}
	c.execs[o.ID] = sess
	c.mu.Unlock()
	exit, err := c.runExec(ctx, sess, o, s, procFile, pidFile, initial)
	c.mu.Lock()
	if err != nil {
		delete(c.execs, o.ID)
	} else {
		sess.exit = exit
		close(sess.done)
		time.AfterFunc(execKeep, func() {
			c.mu.Lock()
			delete(c.execs, o.ID)
			c.mu.Unlock()
		})
	}
	c.mu.Unlock()
	return exit, err
}

// runExec runs `runtime exec` with the streams. Without a tty the
// process gets pipes; with one, the runtime gets the slave of a pty this
// client opens as its stdio and relays it to the process's own terminal
// (it follows its stdin's window size on SIGWINCH).
func (c *conn) runExec(ctx context.Context, sess *execSession, o ExecOptions, s Streams, procFile, pidFile string, initial *Size) (Exit, error) {
	args := []string{"exec", "--process", procFile, "--pid-file", pidFile}
	sio := &stdio{process: true, cancel: func() { killPidFile(pidFile) }}
	var pump sync.WaitGroup
	var stdinW, slave *os.File
	if o.Tty {
		master, sl, err := openPty()
		if err != nil {
			return Exit{}, fmt.Errorf("exec %s: %w", o.ID, err)
		}
		slave = sl
		if initial != nil {
			// The runtime copies its stdin's size to the process's terminal
			// when it starts: keep them equal.
			if err := setWinsize(master, *initial); err != nil {
				master.Close()
				slave.Close()
				return Exit{}, fmt.Errorf("exec %s: %w", o.ID, err)
			}
		}
		args = append(args, "--tty")
		sio.in, sio.outW, sio.errW = slave, slave, slave
		sess.mu.Lock()
		sess.console = master // sizes set before the runtime starts are its initial size
		sess.mu.Unlock()
		sio.started = func(pid int) {
			slave.Close() // the runtime holds it now: EIO on the master when it exits
			sess.mu.Lock()
			sess.runtimePid = pid
			sess.mu.Unlock()
		}
		if s.Resize != nil {
			go func() {
				for sz := range s.Resize {
					if sess.resize(sz) != nil {
						return
					}
				}
			}()
		}
		pump.Add(1)
		go func() {
			defer pump.Done()
			pumpTty(sess, master, o.Stdin, s)
		}()
	} else {
		sio.outW, sio.errW = s.Stdout, s.Stderr
		if sio.outW == nil {
			sio.outW = io.Discard
		}
		if sio.errW == nil {
			sio.errW = io.Discard
		}
		if o.Stdin && s.Stdin != nil {
			r, w, err := os.Pipe()
			if err != nil {
				return Exit{}, err
			}
			defer r.Close()
			stdinW = w
			sio.in = r
			go copyInput(s.Stdin, writeAll(w), func() { w.Close() })
		}
	}
	args = append(args, c.rt.id)
	code, err := c.rt.runStatus(ctx, sio, args...)
	if stdinW != nil {
		stdinW.Close() // the copier's next write fails; the process is gone
	}
	if slave != nil {
		// The master reads EIO once the runtime (the slave's last holder)
		// is gone; the pump ends then.
		slave.Close()
		pump.Wait()
	}
	if err != nil {
		return Exit{}, fmt.Errorf("exec %s in container %s: %w", o.ID, c.rt.id, err)
	}
	return Exit{Code: int32(code), ExitedAt: time.Now().UTC()}, nil
}

// copyInput copies src through write until either fails; when src ends (EOF
// or an error) it calls end.
func copyInput(src io.Reader, write func([]byte) error, end func()) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && write(buf[:n]) != nil {
			return
		}
		if err != nil {
			end()
			return
		}
	}
}

func writeAll(w io.Writer) func([]byte) error {
	return func(b []byte) error { _, err := w.Write(b); return err }
}

// resize sets the window size of the session's terminal and tells the
// runtime, which applies it to the process's own terminal.
func (s *execSession) resize(sz Size) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.console == nil {
		return fmt.Errorf("no terminal: %w", errdefs.ErrFailedPrecondition)
	}
	if err := setWinsize(s.console, sz); err != nil {
		return err
	}
	if s.runtimePid > 0 {
		_ = syscall.Kill(s.runtimePid, syscall.SIGWINCH)
	}
	return nil
}

// pumpTty copies between the pty master and the streams until the master
// reads EIO, then closes it.
func pumpTty(sess *execSession, master *os.File, stdin bool, s Streams) {
	if stdin && s.Stdin != nil {
		// At the end of the input, ^D: EOF on the terminal.
		go copyInput(s.Stdin, writeAll(master), func() { _, _ = master.Write([]byte{4}) })
	}
	out := s.Stdout
	if out == nil {
		out = io.Discard
	}
	_, _ = io.Copy(out, master)
	sess.mu.Lock()
	sess.console = nil
	sess.mu.Unlock()
	master.Close()
}

// openPty opens a new pseudo-terminal pair (close-on-exec, no controlling
// terminal).
func openPty() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err == nil {
		err = unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0)
	}
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("pty: %w", err)
	}
	sl, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err == nil {
		err = makeRaw(int(sl.Fd()))
		if err != nil {
			sl.Close()
		}
	}
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("pty: %w", err)
	}
	return m, sl, nil
}

// makeRaw puts a terminal in raw mode (cfmakeraw): the process's own
// terminal inside the container echoes and edits lines, not this relay. The
// runtime does the same once it runs; input written before that must not be
// echoed twice.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

func (c *conn) attach(ctx context.Context, s Streams) error {
	_, err := stream(ctx, filepath.Join(c.stateDir, layout.AttachSocketFile), s)
	return err
}

// errNoExit: the stdio socket closed without an exit frame.
var errNoExit = errors.New("stdio stream closed before the process exited")

// stream connects s to the shim's attach socket until the exit frame
// arrives, ctx ends or the socket closes.
func stream(ctx context.Context, path string, s Streams) (int32, error) {
	conn, err := dialUnix(ctx, path)
	if err != nil {
		return 0, fmt.Errorf("dial attach socket: %w: %w", errdefs.ErrUnavailable, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	var wmu sync.Mutex
	send := func(typ byte, p []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		return frame.Write(conn, typ, p)
	}
	if s.Stdin != nil {
		go copyInput(s.Stdin, func(b []byte) error { return send(frame.Stdin, b) },
			func() { _ = send(frame.CloseStdin, nil) })
	}
	if s.Resize != nil {
		go func() {
			for sz := range s.Resize {
				if send(frame.Resize, frame.Uint32s(uint32(sz.Width), uint32(sz.Height))) != nil {
					return
				}
			}
		}()
	}
	var buf []byte
	for {
		typ, p, err := frame.Read(conn, buf)
		if err != nil {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			return 0, errNoExit
		}
		buf = p[:0]
		switch typ {
		case frame.Stdout:
			if s.Stdout != nil {
				s.Stdout.Write(p)
			}
		case frame.Stderr:
			if s.Stderr != nil {
				s.Stderr.Write(p)
			}
		case frame.Exit:
			v, err := frame.ParseUint32s(p, 1)
			if err != nil {
				return 0, err
			}
			return int32(v[0]), nil
		}
	}
}
