package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/ttrpc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	shimv1 "flotilla.dev/proto/shim/v1"
	"flotilla.dev/shim/internal/frame"
	"flotilla.dev/shim/internal/layout"
	"flotilla.dev/shim/internal/shim"
)

// conn is the ttrpc connection behind Client.
type conn struct {
	tc  *ttrpc.Client
	svc shimv1.ShimServiceService
}

func spawn(ctx context.Context, o SpawnOptions) (*Client, error) {
	cfg := shim.Config{
		ID: o.ID, Bundle: o.Bundle, StateDir: o.StateDir, Runtime: o.Runtime, RuntimeRoot: o.RuntimeRoot,
		LogPath: o.LogPath, Terminal: o.Terminal, Stdin: o.Stdin, StdinOnce: o.StdinOnce,
		LogLineSize: o.LogLineSize, Timeout: o.Timeout,
	}
	if cfg.Runtime == "" {
		cfg.Runtime = "runc"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Minute
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < cfg.Timeout {
		cfg.Timeout = time.Until(dl)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("spawn shim: %w: %w", errdefs.ErrInvalidArgument, err)
	}
	bin, err := shimBinary(o.ShimBinary)
	if err != nil {
		return nil, fmt.Errorf("spawn shim for %s: %w", o.ID, err)
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("spawn shim for %s: %w", o.ID, err)
	}
	if _, err := os.Stat(filepath.Join(o.StateDir, layout.SocketFile)); err == nil {
		return nil, fmt.Errorf("spawn shim for %s: state dir %s in use: %w", o.ID, o.StateDir, errdefs.ErrAlreadyExists)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout+5*time.Second)
	defer cancel()
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer syncR.Close()
	cmd := exec.Command(bin, cfg.Args()...)
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{syncW}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Run() // stage 1 re-executes itself and exits at once
	syncW.Close()
	if err != nil {
		return nil, fmt.Errorf("spawn shim for %s: %w", o.ID, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		syncR.SetReadDeadline(dl)
	}
	line, rerr := bufio.NewReader(syncR).ReadString('\n')
	switch {
	case line == "ok\n":
	case strings.HasPrefix(line, "error "):
		return nil, fmt.Errorf("spawn shim for %s: %s", o.ID, strings.TrimSpace(strings.TrimPrefix(line, "error ")))
	default:
		return nil, fmt.Errorf("spawn shim for %s: shim exited without a result (%v); see %s: %w",
			o.ID, rerr, filepath.Join(o.StateDir, layout.ShimLogFile), errdefs.ErrUnavailable)
	}
	return connect(ctx, o.StateDir)
}

// shimBinary finds flotilla-shim: explicit, next to the executable, PATH.
func shimBinary(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "flotilla-shim")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return exec.LookPath("flotilla-shim")
}

// dialUnix dials a socket; a path too long for sun_path goes through
// /proc/self/fd of its directory.
func dialUnix(ctx context.Context, path string) (*net.UnixConn, error) {
	var d net.Dialer
	if len(path) < 100 {
		c, err := d.DialContext(ctx, "unix", path)
		if err != nil {
			return nil, err
		}
		return c.(*net.UnixConn), nil
	}
	dir, err := os.OpenFile(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	c, err := d.DialContext(ctx, "unix", fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path)))
	if err != nil {
		return nil, err
	}
	return c.(*net.UnixConn), nil
}

func connect(ctx context.Context, stateDir string) (*Client, error) {
	c, err := dialUnix(ctx, filepath.Join(stateDir, layout.SocketFile))
	if err != nil {
		return nil, fmt.Errorf("connect to shim in %s: %w: %w", stateDir, errdefs.ErrUnavailable, err)
	}
	tc := ttrpc.NewClient(c)
	return &Client{stateDir: stateDir, impl: &conn{tc: tc, svc: shimv1.NewShimServiceClient(tc)}}, nil
}

func readExitFile(stateDir string) (Exit, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, layout.ExitFile))
	if errors.Is(err, os.ErrNotExist) {
		return Exit{}, fmt.Errorf("exit file in %s: %w", stateDir, errdefs.ErrNotFound)
	}
	if err != nil {
		return Exit{}, err
	}
	e, err := layout.DecodeExit(data)
	if err != nil {
		return Exit{}, err
	}
	return Exit(e), nil
}

func readShimPid(stateDir string) (int, error) {
	data, err := os.ReadFile(filepath.Join(stateDir, layout.PidFile))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// native turns a ttrpc status into an errdefs-classed error.
func native(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ttrpc.ErrClosed) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("shim: %w: %w", errdefs.ErrUnavailable, err)
	}
	return errgrpc.ToNative(err)
}

func (c *conn) close() error { return c.tc.Close() }

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func (c *conn) state(ctx context.Context) (State, error) {
	r, err := c.svc.State(ctx, &shimv1.StateRequest{})
	if err != nil {
		return State{}, native(err)
	}
	st := State{ID: r.Id, Pid: int(r.Pid), Status: Status(r.Status), StartedAt: unixTime(r.StartedAt), Message: r.Message}
	if st.Status == StatusStopped {
		st.Exit = Exit{Code: r.ExitCode, ExitedAt: unixTime(r.ExitedAt), OOMKilled: r.OomKilled}
	}
	return st, nil
}

func (c *conn) start(ctx context.Context) (int, error) {
	r, err := c.svc.Start(ctx, &shimv1.StartRequest{})
	if err != nil {
		return 0, native(err)
	}
	return int(r.Pid), nil
}

func (c *conn) wait(ctx context.Context, execID string) (Exit, error) {
	r, err := c.svc.Wait(ctx, &shimv1.WaitRequest{ExecId: execID})
	if err != nil {
		return Exit{}, native(err)
	}
	return Exit{Code: r.ExitCode, ExitedAt: unixTime(r.ExitedAt), OOMKilled: r.OomKilled}, nil
}

func (c *conn) kill(ctx context.Context, execID string, sig syscall.Signal, all bool) error {
	_, err := c.svc.Kill(ctx, &shimv1.KillRequest{Signal: uint32(sig), All: all, ExecId: execID})
	return native(err)
}

func (c *conn) reopenLog(ctx context.Context) error {
	_, err := c.svc.ReopenLog(ctx, &shimv1.ReopenLogRequest{})
	return native(err)
}

func (c *conn) delete(ctx context.Context) error {
	_, err := c.svc.Delete(ctx, &shimv1.DeleteRequest{})
	return native(err)
}

func (c *conn) shutdown(ctx context.Context) error {
	_, err := c.svc.Shutdown(ctx, &shimv1.ShutdownRequest{})
	if err != nil && errdefs.IsUnavailable(native(err)) {
		return nil // the shim exited before answering
	}
	return native(err)
}

func (c *conn) resize(ctx context.Context, execID string, s Size) error {
	_, err := c.svc.ResizePty(ctx, &shimv1.ResizePtyRequest{ExecId: execID, Width: uint32(s.Width), Height: uint32(s.Height)})
	return native(err)
}

func (c *conn) update(ctx context.Context, r *specs.LinuxResources) error {
	if r == nil {
		return fmt.Errorf("update: nil resources: %w", errdefs.ErrInvalidArgument)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = c.svc.Update(ctx, &shimv1.UpdateRequest{ResourcesJson: b})
	return native(err)
}

func (c *conn) execSync(ctx context.Context, p *specs.Process, t time.Duration) (ExecSyncResult, error) {
	if p == nil || len(p.Args) == 0 {
		return ExecSyncResult{}, fmt.Errorf("exec sync: no command: %w", errdefs.ErrInvalidArgument)
	}
	q := *p
	q.Terminal = false
	b, err := json.Marshal(&q)
	if err != nil {
		return ExecSyncResult{}, err
	}
	r, err := c.svc.ExecSync(ctx, &shimv1.ExecSyncRequest{ProcessJson: b, TimeoutMs: t.Milliseconds()})
	if err != nil {
		return ExecSyncResult{}, native(err)
	}
	res := ExecSyncResult{ExitCode: r.ExitCode, TimedOut: r.TimedOut}
	var errs []error
	for _, o := range []struct {
		path string
		dst  *[]byte
	}{{r.StdoutPath, &res.Stdout}, {r.StderrPath, &res.Stderr}} {
		if o.path == "" {
			continue
		}
		b, err := readCapped(o.path, maxExecOutput)
		*o.dst = b
		errs = append(errs, err, os.Remove(o.path))
	}
	if err := errors.Join(errs...); err != nil {
		return ExecSyncResult{}, fmt.Errorf("exec sync output: %w", err)
	}
	return res, nil
}

const maxExecOutput = 16 << 20

// readCapped reads at most max bytes of the file at path.
func readCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

func (c *conn) exec(ctx context.Context, o ExecOptions, s Streams) (Exit, error) {
	if o.Process == nil || len(o.Process.Args) == 0 {
		return Exit{}, fmt.Errorf("exec: no command: %w", errdefs.ErrInvalidArgument)
	}
	q := *o.Process
	q.Terminal = o.Tty
	b, err := json.Marshal(&q)
	if err != nil {
		return Exit{}, err
	}
	r, err := c.svc.Exec(ctx, &shimv1.ExecRequest{ExecId: o.ID, ProcessJson: b, Tty: o.Tty, Stdin: o.Stdin})
	if err != nil {
		return Exit{}, native(err)
	}
	if !o.Stdin {
		s.Stdin = nil
	}
	code, err := stream(ctx, r.Stdio.GetPath(), s)
	if err != nil {
		return Exit{}, fmt.Errorf("exec %s: %w", o.ID, err)
	}
	return Exit{Code: code, ExitedAt: time.Now().UTC()}, nil
}

func (c *conn) attach(ctx context.Context, s Streams) error {
	r, err := c.svc.Attach(ctx, &shimv1.AttachRequest{})
	if err != nil {
		return native(err)
	}
	_, err = stream(ctx, r.Stdio.GetPath(), s)
	return err
}

// errNoExit: the stdio socket closed without an exit frame.
var errNoExit = errors.New("stdio stream closed before the process exited")

// stream connects s to a stdio socket until the exit frame arrives, ctx
// ends or the socket closes.
func stream(ctx context.Context, path string, s Streams) (int32, error) {
	conn, err := dialUnix(ctx, path)
	if err != nil {
		return 0, fmt.Errorf("dial stdio socket: %w: %w", errdefs.ErrUnavailable, err)
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
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Stdin.Read(buf)
				if n > 0 && send(frame.Stdin, buf[:n]) != nil {
					return
				}
				if err != nil {
					_ = send(frame.CloseStdin, nil)
					return
				}
			}
		}()
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
