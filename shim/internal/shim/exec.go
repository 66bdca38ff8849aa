package shim

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/errdefs"

	shimv1 "flotilla.dev/proto/shim/v1"
	"flotilla.dev/shim/internal/frame"
	"flotilla.dev/shim/internal/layout"
	"flotilla.dev/shim/internal/reaper"
	"flotilla.dev/shim/internal/runtime"
)

// MaxExecOutput caps each ExecSync output stream.
const MaxExecOutput = 16 << 20

var (
	execIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	execSeq  atomic.Uint64
)

// execProc is an interactive exec session.
type execProc struct {
	id      string
	pid     int
	console *os.File
	stdinW  *os.File
	exited  chan struct{}
	exit    layout.Exit
}

// startExec runs `runtime exec --detach`: the process is reparented to the
// shim (a subreaper) and reaped like the init. It returns the host pid.
func (s *service) startExec(ctx context.Context, name string, processJSON []byte, stdio runtime.Stdio, console string) (int, <-chan reaper.Exit, error) {
	if st, _, _ := s.snapshot(); st != shimv1.Status_STATUS_RUNNING {
		return 0, nil, fmt.Errorf("exec in container %s in state %s: %w", s.cfg.ID, st, errdefs.ErrFailedPrecondition)
	}
	if len(processJSON) == 0 {
		return 0, nil, fmt.Errorf("exec: no process: %w", errdefs.ErrInvalidArgument)
	}
	procFile, pidFile := name+".json", name+".pid"
	if err := os.WriteFile(procFile, processJSON, 0o600); err != nil {
		return 0, nil, err
	}
	defer os.Remove(procFile)
	defer os.Remove(pidFile)
	args := []string{"exec", "--detach", "--pid-file", pidFile, "--process", procFile}
	if console != "" {
		args = append(args, "--console-socket", console)
	}
	args = append(args, s.cfg.ID)
	if err := s.rt.Run(ctx, stdio, args...); err != nil {
		return 0, nil, fmt.Errorf("exec in container %s: %w", s.cfg.ID, err)
	}
	pid, err := runtime.ReadPid(pidFile)
	if err != nil {
		return 0, nil, err
	}
	return pid, s.reaper.Watch(pid), nil
}

func (s *service) ExecSync(ctx context.Context, r *shimv1.ExecSyncRequest) (*shimv1.ExecSyncResponse, error) {
	if r.TimeoutMs < 0 {
		return nil, fmt.Errorf("exec sync: negative timeout: %w", errdefs.ErrInvalidArgument)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return nil, err
	}
	defer errR.Close()
	name := fmt.Sprintf("execsync-%d", execSeq.Add(1))
	outFile, err := os.OpenFile(name+".stdout", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		outW.Close()
		errW.Close()
		return nil, err
	}
	defer outFile.Close()
	errFile, err := os.OpenFile(name+".stderr", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		outW.Close()
		errW.Close()
		os.Remove(outFile.Name())
		return nil, err
	}
	defer errFile.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); copyCapped(outFile, outR) }()
	go func() { defer wg.Done(); copyCapped(errFile, errR) }()

	rctx, cancel := withDeadline(ctx)
	defer cancel()
	pid, exitCh, err := s.startExec(rctx, name, r.ProcessJson, runtime.Stdio{Out: outW, Err: errW}, "")
	outW.Close()
	errW.Close()
	if err != nil {
		waitOrClose(&wg, 2*time.Second, outR, errR)
		os.Remove(outFile.Name())
		os.Remove(errFile.Name())
		return nil, err
	}
	var timeout <-chan time.Time
	if r.TimeoutMs > 0 {
		t := time.NewTimer(time.Duration(r.TimeoutMs) * time.Millisecond)
		defer t.Stop()
		timeout = t.C
	}
	resp := &shimv1.ExecSyncResponse{
		StdoutPath: filepath.Join(s.cfg.StateDir, outFile.Name()),
		StderrPath: filepath.Join(s.cfg.StateDir, errFile.Name()),
	}
	var e reaper.Exit
	select {
	case e = <-exitCh:
	case <-timeout:
		resp.TimedOut = true
		_ = syscall.Kill(pid, syscall.SIGKILL)
		e = <-exitCh
	case <-ctx.Done():
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-exitCh
		waitOrClose(&wg, 2*time.Second, outR, errR)
		os.Remove(outFile.Name())
		os.Remove(errFile.Name())
		return nil, ctx.Err()
	}
	waitOrClose(&wg, 2*time.Second, outR, errR)
	resp.ExitCode = e.Code
	return resp, nil
}

// waitOrClose waits for the copiers; after d it closes their readers (a
// background child of the exec may keep the pipes open).
func waitOrClose(wg *sync.WaitGroup, d time.Duration, files ...*os.File) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		for _, f := range files {
			f.Close()
		}
		<-done
	}
}

// copyCapped copies the first MaxExecOutput bytes of r to w and drains
// the rest, so the process never blocks on a full pipe.
func copyCapped(w io.Writer, r io.Reader) {
	if _, err := io.CopyN(w, r, MaxExecOutput); err == nil {
		_, _ = io.Copy(io.Discard, r)
	}
}

func (s *service) Exec(ctx context.Context, r *shimv1.ExecRequest) (*shimv1.ExecResponse, error) {
	if !execIDRe.MatchString(r.ExecId) {
		return nil, fmt.Errorf("exec id %q must match %s: %w", r.ExecId, execIDRe, errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	if _, ok := s.execs[r.ExecId]; ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("exec %s: %w", r.ExecId, errdefs.ErrAlreadyExists)
	}
	p := &execProc{id: r.ExecId, exited: make(chan struct{})}
	s.execs[r.ExecId] = p
	s.mu.Unlock()

	resp, err := s.exec(ctx, p, r)
	if err != nil {
		s.mu.Lock()
		delete(s.execs, r.ExecId)
		s.mu.Unlock()
		return nil, err
	}
	return resp, nil
}

func (s *service) exec(ctx context.Context, p *execProc, r *shimv1.ExecRequest) (_ *shimv1.ExecResponse, err error) {
	name := "exec-" + p.id
	sockName := name + ".sock"
	l, err := listen(sockName)
	if err != nil {
		return nil, err
	}
	var toClose []*os.File
	defer func() {
		for _, f := range toClose {
			f.Close()
		}
		if err != nil {
			l.Close()
			os.Remove(sockName)
			for _, f := range []*os.File{p.console, p.stdinW} {
				if f != nil {
					f.Close()
				}
			}
		}
	}()
	var stdio runtime.Stdio
	var outR, errR *os.File
	var cs *consoleSocket
	if r.Tty {
		if cs, err = newConsoleSocket(name + ".console"); err != nil {
			return nil, err
		}
		defer cs.close()
	} else {
		var outW, errW *os.File
		if outR, outW, err = os.Pipe(); err != nil {
			return nil, err
		}
		if errR, errW, err = os.Pipe(); err != nil {
			outR.Close()
			return nil, err
		}
		toClose = append(toClose, outW, errW)
		stdio.Out, stdio.Err = outW, errW
		if r.Stdin {
			var inR *os.File
			if inR, p.stdinW, err = os.Pipe(); err != nil {
				return nil, err
			}
			toClose = append(toClose, inR)
			stdio.In = inR
		}
	}
	rctx, cancel := withDeadline(ctx)
	defer cancel()
	consoleName := ""
	if cs != nil {
		consoleName = runtimeSocketPath(s.cfg.StateDir, cs.name)
	}
	pid, exitCh, err := s.startExec(rctx, name, r.ProcessJson, stdio, consoleName)
	if err != nil {
		if outR != nil {
			outR.Close()
			errR.Close()
		}
		return nil, err
	}
	if cs != nil {
		if p.console, err = cs.get(rctx); err != nil {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			<-exitCh
			return nil, err
		}
	}
	s.mu.Lock()
	p.pid = pid
	s.mu.Unlock()
	go s.serveExec(p, l, sockName, exitCh, outR, errR, r.Stdin)
	return &shimv1.ExecResponse{Pid: uint32(pid), Stdio: &shimv1.StdioSocket{
		Path: filepath.Join(s.cfg.StateDir, sockName), Tty: r.Tty,
	}}, nil
}

// execAcceptTimeout bounds how long an exec waits for its client.
const execAcceptTimeout = time.Minute

// serveExec connects one client to the exec's stdio, then reports its exit.
// Output waits in the pipe (or pty) until the client connects.
func (s *service) serveExec(p *execProc, l *net.UnixListener, sockName string, exitCh <-chan reaper.Exit, outR, errR *os.File, stdin bool) {
	defer os.Remove(sockName)
	l.SetDeadline(time.Now().Add(execAcceptTimeout))
	conn, err := l.AcceptUnix()
	l.Close()
	if err != nil {
		s.log.Warn("exec client never connected", "exec_id", p.id, "error", err)
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
	var wmu sync.Mutex
	send := func(typ byte) func([]byte) {
		return func(b []byte) {
			if conn == nil {
				return
			}
			wmu.Lock()
			defer wmu.Unlock()
			conn.SetWriteDeadline(time.Now().Add(attachWriteTimeout))
			_ = frame.Write(conn, typ, b)
		}
	}
	var wg sync.WaitGroup
	pump := func(r *os.File, typ byte) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := r.Read(buf)
				if n > 0 {
					send(typ)(buf[:n])
				}
				if err != nil {
					return
				}
			}
		}()
	}
	var files []*os.File
	if p.console != nil {
		pump(p.console, frame.Stdout)
		files = append(files, p.console)
	} else {
		pump(outR, frame.Stdout)
		pump(errR, frame.Stderr)
		files = append(files, outR, errR)
	}
	if conn != nil {
		go s.readExecClient(p, conn, stdin)
	}
	e := <-exitCh
	waitOrClose(&wg, 2*time.Second, files...)
	for _, f := range files {
		f.Close()
	}
	s.mu.Lock()
	p.exit = layout.Exit{Code: e.Code, ExitedAt: e.At.UTC()}
	if p.stdinW != nil {
		p.stdinW.Close()
	}
	close(p.exited)
	s.mu.Unlock()
	send(frame.Exit)(frame.Uint32s(uint32(e.Code)))
	if conn != nil {
		conn.Close()
	}
	// Keep the exit for WaitExec a while, then forget the session.
	time.AfterFunc(time.Minute, func() {
		s.mu.Lock()
		delete(s.execs, p.id)
		s.mu.Unlock()
	})
}

func (s *service) readExecClient(p *execProc, conn *net.UnixConn, stdin bool) {
	var buf []byte
	for {
		typ, b, err := frame.Read(conn, buf)
		if err != nil {
			return
		}
		buf = b[:0]
		switch typ {
		case frame.Stdin:
			if !stdin {
				continue
			}
			if p.console != nil {
				_, _ = p.console.Write(b)
			} else if p.stdinW != nil {
				_, _ = p.stdinW.Write(b)
			}
		case frame.CloseStdin:
			if p.console != nil {
				_, _ = p.console.Write([]byte{4})
			} else if p.stdinW != nil {
				p.stdinW.Close()
			}
		case frame.Resize:
			if v, err := frame.ParseUint32s(b, 2); err == nil && p.console != nil {
				_ = setWinsize(p.console, v[0], v[1])
			}
		}
	}
}

func (s *service) lookupExec(id string) (*execProc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.execs[id]
	if !ok {
		return nil, fmt.Errorf("exec %s: %w", id, errdefs.ErrNotFound)
	}
	return p, nil
}

func (s *service) waitExec(ctx context.Context, id string) (*shimv1.WaitResponse, error) {
	p, err := s.lookupExec(id)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.exited:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &shimv1.WaitResponse{ExitCode: p.exit.Code, ExitedAt: p.exit.ExitedAt.UnixNano()}, nil
}

func (s *service) killExec(id string, sig uint32) error {
	p, err := s.lookupExec(id)
	if err != nil {
		return err
	}
	select {
	case <-p.exited:
		return nil
	default:
	}
	s.mu.Lock()
	pid := p.pid
	s.mu.Unlock()
	if pid <= 0 { // never signal 0 or -1: that is the shim's own group
		return fmt.Errorf("kill exec %s: not started yet: %w", id, errdefs.ErrFailedPrecondition)
	}
	if err := syscall.Kill(pid, syscall.Signal(sig)); err != nil && err != syscall.ESRCH {
		return fmt.Errorf("kill exec %s: %w", id, err)
	}
	return nil
}

func (s *service) resizeExec(id string, w, h uint32) error {
	p, err := s.lookupExec(id)
	if err != nil {
		return err
	}
	if p.console == nil {
		return fmt.Errorf("resize exec %s: no terminal: %w", id, errdefs.ErrFailedPrecondition)
	}
	return setWinsize(p.console, w, h)
}

func (s *service) Attach(ctx context.Context, _ *shimv1.AttachRequest) (*shimv1.AttachResponse, error) {
	return &shimv1.AttachResponse{Stdio: &shimv1.StdioSocket{
		Path: filepath.Join(s.cfg.StateDir, layout.AttachSocketFile), Tty: s.cfg.Terminal,
	}}, nil
}
