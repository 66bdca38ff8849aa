package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"flotilla.dev/lib/timerslack"
	"flotilla.dev/shim/internal/layout"
)

// conn is what a Client holds: the shim's state dir (its control socket
// answers one request per connection, see proto/shim/PROTOCOL.md), the runtime
// the client itself runs for kill, delete, update and exec, and the exec
// sessions this client started.
type conn struct {
	stateDir string
	rt       runtimeCmd

	mu    sync.Mutex
	execs map[string]*execSession

	fast fastExec // ExecSync without the runtime (fastexec.go)
}

// runtimeInfo is written by Spawn next to the shim's files, so a client
// that reconnects after a restart runs the same runtime with the same root.
type runtimeInfo struct {
	ID      string `json:"id"`
	Runtime string `json:"runtime"`
	Root    string `json:"root,omitempty"`
	// Shim and Bundle enable ExecSync's fast path; empty: `runtime exec`.
	Shim   string `json:"shim,omitempty"`
	Bundle string `json:"bundle,omitempty"`
}

func spawn(ctx context.Context, o SpawnOptions) (*Client, error) {
	if err := validate(&o); err != nil {
		return nil, fmt.Errorf("spawn shim: %w: %w", errdefs.ErrInvalidArgument, err)
	}
	bin, err := FindShim(o.ShimBinary)
	if err != nil {
		return nil, fmt.Errorf("spawn shim for %s: %w", o.ID, err)
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("spawn shim for %s: %w", o.ID, err)
	}
	if _, err := os.Stat(filepath.Join(o.StateDir, layout.SocketFile)); err == nil {
		return nil, fmt.Errorf("spawn shim for %s: state dir %s in use: %w", o.ID, o.StateDir, errdefs.ErrAlreadyExists)
	}
	info := runtimeInfo{ID: o.ID, Runtime: o.Runtime, Root: o.RuntimeRoot}
	if !o.RuntimeExecSync {
		info.Shim, info.Bundle = bin, o.Bundle
	}
	infoJSON, _ := json.Marshal(info)
	if err := layout.WriteFileAtomic(o.StateDir, layout.RuntimeFile, infoJSON, 0o600); err != nil {
		return nil, fmt.Errorf("spawn shim for %s: %w", o.ID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout+5*time.Second)
	defer cancel()
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer syncR.Close()
	args := shimArgs(o)
	extra := []*os.File{syncW}
	f := sealedFor(o.Runtime)
	if f != nil {
		// The shim keeps fd 4 and execs the runtime from it (sealed.go).
		extra = append(extra, f)
		args = append(args, "--runtime-fd", "4")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = "/"
	cmd.ExtraFiles = extra
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = timerslack.Run(cmd) // stage 1 forks the shim and exits at once; the shim, runc and the container keep the slack sandboxd inherited
	if f != nil {
		sealedMu.RUnlock()
	}
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
	return newClient(o.StateDir, info), nil
}

// validate checks o and fills in defaults.
func validate(o *SpawnOptions) error {
	var errs []error
	if o.ID == "" {
		errs = append(errs, errors.New("id is required"))
	}
	for name, p := range map[string]string{"bundle": o.Bundle, "state dir": o.StateDir} {
		if !filepath.IsAbs(p) {
			errs = append(errs, fmt.Errorf("%s must be an absolute path, got %q", name, p))
		}
	}
	if o.LogPath != "" && !filepath.IsAbs(o.LogPath) {
		errs = append(errs, fmt.Errorf("log path must be absolute, got %q", o.LogPath))
	}
	if o.StdinOnce && !o.Stdin {
		errs = append(errs, errors.New("stdin once needs stdin"))
	}
	if o.Timeout < 0 || o.LogLineSize < 0 {
		errs = append(errs, errors.New("timeout and log line size must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if o.Runtime == "" {
		o.Runtime = "runc"
	}
	p, err := absRuntime(o.Runtime)
	if err != nil {
		return err
	}
	o.Runtime = p
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	return nil
}

// shimArgs renders o as the shim's command line (proto/shim/PROTOCOL.md).
func shimArgs(o SpawnOptions) []string {
	args := []string{"--id", o.ID, "--bundle", o.Bundle, "--state-dir", o.StateDir, "--runtime", o.Runtime,
		"--timeout-ms", strconv.FormatInt(o.Timeout.Milliseconds(), 10)}
	if o.RuntimeRoot != "" {
		args = append(args, "--runtime-root", o.RuntimeRoot)
	}
	if o.LogPath != "" {
		args = append(args, "--log-path", o.LogPath)
	}
	if o.LogLineSize > 0 {
		args = append(args, "--log-line-size", strconv.Itoa(o.LogLineSize))
	}
	for flag, on := range map[string]bool{"--terminal": o.Terminal, "--stdin": o.Stdin, "--stdin-once": o.StdinOnce,
		"--start-via-runtime": o.RuntimeStart} {
		if on {
			args = append(args, flag)
		}
	}
	return args
}

// FindShim finds flotilla-shim: explicit, next to the executable, PATH.
func FindShim(explicit string) (string, error) {
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

func newClient(stateDir string, info runtimeInfo) *Client {
	return &Client{stateDir: stateDir, impl: &conn{stateDir: stateDir,
		rt:    runtimeCmd{binary: info.Runtime, root: info.Root, id: info.ID, dir: stateDir},
		execs: map[string]*execSession{}, fast: fastExec{shim: info.Shim, bundle: info.Bundle}}}
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
	data, err := os.ReadFile(filepath.Join(stateDir, layout.RuntimeFile))
	var info runtimeInfo
	if err == nil {
		err = json.Unmarshal(data, &info)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to shim in %s: %w: %w", stateDir, errdefs.ErrUnavailable, err)
	}
	c := newClient(stateDir, info)
	// The shim must answer: a socket file without a shim is not a shim.
	if _, err := c.impl.state(ctx); err != nil {
		return nil, fmt.Errorf("connect to shim in %s: %w", stateDir, err)
	}
	return c, nil
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
	return readPid(filepath.Join(stateDir, layout.PidFile))
}

// readPid reads a pid file (the shim's, or one the runtime wrote).
func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

func (c *conn) close() error { return nil }

// call sends one request line to the shim's control socket and returns
// the fields after "ok". An "err <class> <text>" answer becomes an error of
// that errdefs class; a shim that cannot be reached is ErrUnavailable.
func (c *conn) call(ctx context.Context, req string) (string, error) {
	sock, err := dialUnix(ctx, filepath.Join(c.stateDir, layout.SocketFile))
	if err != nil {
		return "", fmt.Errorf("shim in %s: %w: %w", c.stateDir, errdefs.ErrUnavailable, err)
	}
	defer sock.Close()
	stop := context.AfterFunc(ctx, func() { sock.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := sock.Write([]byte(req + "\n")); err != nil {
		return "", c.lost(ctx, err)
	}
	line, err := bufio.NewReaderSize(sock, 512).ReadString('\n')
	if err != nil {
		return "", c.lost(ctx, err)
	}
	line = strings.TrimSuffix(line, "\n")
	if rest, ok := strings.CutPrefix(line, "ok"); ok {
		return strings.TrimPrefix(rest, " "), nil
	}
	class, text, _ := strings.Cut(strings.TrimPrefix(line, "err "), " ")
	base := map[string]error{
		"invalid_argument": errdefs.ErrInvalidArgument, "not_found": errdefs.ErrNotFound,
		"failed_precondition": errdefs.ErrFailedPrecondition, "unavailable": errdefs.ErrUnavailable,
	}[class]
	if base == nil {
		return "", errors.New(text)
	}
	return "", fmt.Errorf("%s: %w", text, base)
}

func (c *conn) lost(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("shim in %s: %w: %w", c.stateDir, errdefs.ErrUnavailable, err)
}

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// ints parses the first n space-separated integers of s; rest is what
// follows them.
func ints(s string, n int) (v []int64, rest string, err error) {
	f := strings.SplitN(s, " ", n+1)
	if len(f) < n {
		return nil, "", fmt.Errorf("shim answer %q: want %d fields", s, n)
	}
	for _, x := range f[:n] {
		i, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("shim answer %q: %w", s, err)
		}
		v = append(v, i)
	}
	if len(f) > n {
		rest = f[n]
	}
	return v, rest, nil
}

func (c *conn) state(ctx context.Context) (State, error) {
	ans, err := c.call(ctx, "state")
	if err != nil {
		return State{}, err
	}
	status, rest, _ := strings.Cut(ans, " ")
	v, msg, err := ints(rest, 5)
	if err != nil {
		return State{}, err
	}
	st := State{ID: c.rt.id, Pid: int(v[0]), StartedAt: unixTime(v[1])}
	if msg != "-" {
		st.Message = msg
	}
	switch status {
	case "created":
		st.Status = StatusCreated
	case "running":
		st.Status = StatusRunning
	case "stopped":
		st.Status = StatusStopped
		st.Exit = Exit{Code: int32(v[2]), ExitedAt: unixTime(v[3]), OOMKilled: v[4] != 0}
	}
	return st, nil
}

func (c *conn) start(ctx context.Context) (int, error) {
	ans, err := c.call(ctx, "start")
	if err != nil {
		return 0, err
	}
	v, _, err := ints(ans, 1)
	if err != nil {
		return 0, err
	}
	return int(v[0]), nil
}

func (c *conn) wait(ctx context.Context, execID string) (Exit, error) {
	if execID != "" {
		s, err := c.lookupExec(execID)
		if err != nil {
			return Exit{}, err
		}
		select {
		case <-s.done:
			return s.exit, nil
		case <-ctx.Done():
			return Exit{}, ctx.Err()
		}
	}
	ans, err := c.call(ctx, "wait")
	if err != nil {
		return Exit{}, err
	}
	v, _, err := ints(ans, 3)
	if err != nil {
		return Exit{}, err
	}
	return Exit{Code: int32(v[0]), ExitedAt: unixTime(v[1]), OOMKilled: v[2] != 0}, nil
}

func (c *conn) kill(ctx context.Context, execID string, sig syscall.Signal, all bool) error {
	if sig <= 0 || sig > 64 {
		return fmt.Errorf("kill: signal %d: %w", sig, errdefs.ErrInvalidArgument)
	}
	if execID != "" {
		return c.killExec(execID, sig)
	}
	// The shim signals the init itself (and, for SIGKILL to all, when the
	// init is alone in its PID namespace) without starting the runtime.
	req := fmt.Sprintf("kill %d", sig)
	if all {
		req += " all"
	}
	_, err := c.call(ctx, req)
	switch {
	case err == nil:
		return nil
	case errdefs.IsFailedPrecondition(err) && all, // needs `runtime kill --all`
		errdefs.IsInvalidArgument(err) && strings.Contains(err.Error(), "unknown request"), // a shim before "kill"
		errdefs.IsUnavailable(err): // no shim: the runtime may still know the container
	default:
		return fmt.Errorf("kill container %s: %w", c.rt.id, err)
	}
	if st, err := c.state(ctx); err == nil && st.Status == StatusStopped {
		return nil
	}
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	args = append(args, c.rt.id, strconv.Itoa(int(sig)))
	if err := c.rt.run(ctx, nil, args...); err != nil {
		if isNotExist(err) || strings.Contains(err.Error(), "not running") || strings.Contains(err.Error(), "process already finished") {
			return nil
		}
		if st, serr := c.state(ctx); serr == nil && st.Status == StatusStopped {
			return nil
		}
		return fmt.Errorf("kill container %s: %w", c.rt.id, err)
	}
	return nil
}

func (c *conn) reopenLog(ctx context.Context) error {
	_, err := c.call(ctx, "reopen")
	return err
}

func (c *conn) delete(ctx context.Context) error {
	st, err := c.state(ctx)
	shimGone := errdefs.IsUnavailable(err)
	if err != nil && !shimGone {
		return err
	}
	if err == nil && st.Status == StatusRunning {
		return fmt.Errorf("delete container %s: still running: %w", c.rt.id, errdefs.ErrFailedPrecondition)
	}
	// A container whose init the shim reaped is runc's to forget: that much
	// needs no runc process (deleteStopped); anything else goes to runc.
	fast := err == nil && st.Status == StatusStopped && c.rt.deleteStopped() == nil
	if !fast {
		if err := c.rt.run(ctx, nil, "delete", "--force", c.rt.id); err != nil && !isNotExist(err) {
			return fmt.Errorf("delete container %s: %w", c.rt.id, err)
		}
	}
	if shimGone {
		return nil
	}
	// A created container's init dies with the delete: wait for the shim
	// to record its exit, so State and the exit file agree.
	if _, err := c.wait(ctx, ""); err != nil && !errdefs.IsUnavailable(err) {
		return fmt.Errorf("delete container %s: %w", c.rt.id, err)
	}
	return nil
}

func (c *conn) shutdown(ctx context.Context) error {
	_, err := c.call(ctx, "shutdown")
	if errdefs.IsUnavailable(err) {
		return nil // the shim is gone already
	}
	return err
}

func (c *conn) resize(ctx context.Context, execID string, s Size) error {
	if execID != "" {
		return c.resizeExec(execID, s)
	}
	_, err := c.call(ctx, fmt.Sprintf("resize %d %d", s.Width, s.Height))
	return err
}

func (c *conn) update(ctx context.Context, r *specs.LinuxResources) error {
	if r == nil {
		return fmt.Errorf("update: nil resources: %w", errdefs.ErrInvalidArgument)
	}
	if st, err := c.state(ctx); err != nil {
		return err
	} else if st.Status == StatusStopped {
		return fmt.Errorf("update container %s: stopped: %w", c.rt.id, errdefs.ErrFailedPrecondition)
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(c.stateDir, "update-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = c.rt.run(ctx, nil, "update", "--resources", f.Name(), c.rt.id)
	}
	if err != nil {
		return fmt.Errorf("update container %s: %w", c.rt.id, err)
	}
	return nil
}
