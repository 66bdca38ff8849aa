package shim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containerd/ttrpc"

	"flotilla.dev/shim/internal/crilog"
	"flotilla.dev/shim/internal/layout"
	"flotilla.dev/shim/internal/oom"
	"flotilla.dev/shim/internal/reaper"
	"flotilla.dev/shim/internal/runtime"
	shimv1 "flotilla.dev/proto/shim/v1"
)

// The container's states. Transitions (anything else is an error):
//
//	created -> running   Start
//	created -> stopped   init exits (Delete of a created container, a crash)
//	running -> stopped   init exits
//
// Invariant: status becomes stopped only after the exit file is written
// and the output is copied, so a Wait that returns sees a complete log.
type service struct {
	cfg    Config
	log    *slog.Logger
	rt     *runtime.Runtime
	reaper *reaper.Reaper
	clog   *crilog.Writer
	io     *containerIO
	oom    *oom.Watcher

	startMu   sync.Mutex // one Start at a time: a second one sees running
	mu        sync.Mutex
	status    shimv1.Status
	pid       int
	startedAt time.Time
	exit      layout.Exit
	exited    chan struct{} // closed when status becomes stopped
	message   string
	deleted   bool
	execs     map[string]*execProc

	ttrpcSrv *ttrpc.Server
	done     chan struct{} // closed by Shutdown
	doneOnce sync.Once
}

func newService(ctx context.Context, cfg Config, log *slog.Logger) (*service, error) {
	rp, err := reaper.New()
	if err != nil {
		return nil, err
	}
	s := &service{
		cfg: cfg, log: log, reaper: rp,
		rt:     &runtime.Runtime{Binary: cfg.Runtime, Root: cfg.RuntimeRoot, ID: cfg.ID, StateDir: cfg.StateDir, Reaper: rp},
		exited: make(chan struct{}),
		execs:  map[string]*execProc{},
		done:   make(chan struct{}),
	}
	if s.clog, err = crilog.Open(cfg.LogPath); err != nil {
		return nil, fmt.Errorf("open container log: %w", err)
	}
	// The sockets exist before the container does: a client never sees a
	// created container it cannot reach.
	sock, err := listen(layout.SocketFile)
	if err != nil {
		return nil, err
	}
	if s.ttrpcSrv, err = ttrpc.NewServer(ttrpc.WithUnaryServerInterceptor(errorInterceptor)); err != nil {
		return nil, err
	}
	shimv1.RegisterShimServiceService(s.ttrpcSrv, s)
	if err := s.create(ctx); err != nil {
		sock.Close()
		os.Remove(layout.SocketFile)
		return nil, err
	}
	go func() {
		if err := s.ttrpcSrv.Serve(context.Background(), sock); err != nil && !errors.Is(err, ttrpc.ErrServerClosed) {
			s.log.Error("ttrpc server failed", "error", err)
		}
	}()
	return s, nil
}

// listen listens on a unix socket relative to the state dir (the process's
// working directory), which keeps long state dirs under sun_path's limit.
func listen(name string) (*net.UnixListener, error) {
	_ = os.Remove(name)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		return nil, err
	}
	l.SetUnlinkOnClose(false)
	if err := os.Chmod(name, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// runtimeSocketPath names a socket in the state dir for the runtime. A path
// too long for sun_path (108 bytes) goes through /proc/<shim>/cwd, which is
// the state dir.
func runtimeSocketPath(stateDir, name string) string {
	if p := filepath.Join(stateDir, name); len(p) < 100 {
		return p
	}
	return fmt.Sprintf("/proc/%d/cwd/%s", os.Getpid(), name)
}

// create runs `runtime create` with the container's stdio and starts
// copying its output and watching its exit.
func (s *service) create(ctx context.Context) error {
	cio, err := newContainerIO(s.cfg, s.clog, s.log)
	if err != nil {
		return err
	}
	args := []string{"create", "--bundle", s.cfg.Bundle, "--pid-file", layout.ContainerPidFile}
	if s.cfg.Terminal {
		args = append(args, "--console-socket", runtimeSocketPath(s.cfg.StateDir, layout.ConsoleSocketFile))
	}
	args = append(args, s.cfg.ID)
	if err := s.rt.Run(ctx, cio.runtimeStdio(), args...); err != nil {
		cio.abort()
		return err
	}
	pid, err := runtime.ReadPid(layout.ContainerPidFile)
	if err == nil {
		err = cio.created(ctx)
	}
	if err != nil {
		cio.abort()
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.rt.Run(dctx, runtime.Stdio{}, "delete", "--force", s.cfg.ID)
		return err
	}
	s.io = cio
	s.pid = pid
	s.status = shimv1.Status_STATUS_CREATED
	exitCh := s.reaper.Watch(pid)
	if s.oom, err = oom.Watch(pid); err != nil {
		s.log.Warn("oom detection unavailable", "error", err)
	}
	cio.startCopy()
	go s.waitInit(exitCh)
	return nil
}

// waitInit records the init's exit: output first, then the exit file, then
// the state change that wakes Wait.
func (s *service) waitInit(exitCh <-chan reaper.Exit) {
	e := <-exitCh
	s.io.waitOutput(5 * time.Second)
	ex := layout.Exit{Code: e.Code, ExitedAt: e.At.UTC()}
	if s.oom != nil {
		ex.OOMKilled = s.oom.Killed()
	}
	if err := layout.WriteFileAtomic(s.cfg.StateDir, layout.ExitFile, ex.Encode(), 0o600); err != nil {
		s.log.Error("write exit file failed", "error", err)
	}
	s.mu.Lock()
	s.exit = ex
	s.status = shimv1.Status_STATUS_STOPPED
	close(s.exited)
	s.mu.Unlock()
	s.io.finish(ex.Code)
	s.log.Info("container exited", "exit_code", ex.Code, "oom_killed", ex.OOMKilled)
}

// serve blocks until Shutdown, then stops the servers.
func (s *service) serve() {
	<-s.done
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.ttrpcSrv.Shutdown(ctx)
	s.io.close()
	if s.oom != nil {
		s.oom.Close()
	}
	s.clog.Close()
	for _, f := range []string{layout.SocketFile, layout.AttachSocketFile, layout.ConsoleSocketFile, layout.ContainerPidFile} {
		os.Remove(filepath.Join(s.cfg.StateDir, f))
	}
}

func (s *service) snapshot() (shimv1.Status, int, layout.Exit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status, s.pid, s.exit
}

func (s *service) State(ctx context.Context, _ *shimv1.StateRequest) (*shimv1.StateResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &shimv1.StateResponse{Id: s.cfg.ID, Pid: uint32(s.pid), Status: s.status, Message: s.message}
	if !s.startedAt.IsZero() {
		r.StartedAt = s.startedAt.UnixNano()
	}
	if s.status == shimv1.Status_STATUS_STOPPED {
		r.ExitCode, r.ExitedAt, r.OomKilled = s.exit.Code, s.exit.ExitedAt.UnixNano(), s.exit.OOMKilled
	}
	return r, nil
}

func (s *service) Start(ctx context.Context, _ *shimv1.StartRequest) (*shimv1.StartResponse, error) {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	s.mu.Lock()
	if s.status != shimv1.Status_STATUS_CREATED {
		st := s.status
		s.mu.Unlock()
		return nil, fmt.Errorf("start container %s in state %s: %w", s.cfg.ID, st, errdefs.ErrFailedPrecondition)
	}
	s.mu.Unlock()
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	if err := s.rt.Run(ctx, runtime.Stdio{}, "start", s.cfg.ID); err != nil {
		s.mu.Lock()
		s.message = err.Error()
		s.mu.Unlock()
		return nil, fmt.Errorf("start container %s: %w", s.cfg.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.startedAt = time.Now()
	if s.status == shimv1.Status_STATUS_CREATED {
		s.status = shimv1.Status_STATUS_RUNNING
	}
	return &shimv1.StartResponse{Pid: uint32(s.pid)}, nil
}

func (s *service) Wait(ctx context.Context, r *shimv1.WaitRequest) (*shimv1.WaitResponse, error) {
	if r.ExecId != "" {
		return s.waitExec(ctx, r.ExecId)
	}
	select {
	case <-s.exited:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	_, _, ex := s.snapshot()
	return &shimv1.WaitResponse{ExitCode: ex.Code, ExitedAt: ex.ExitedAt.UnixNano(), OomKilled: ex.OOMKilled}, nil
}

func (s *service) Kill(ctx context.Context, r *shimv1.KillRequest) (*shimv1.KillResponse, error) {
	if r.Signal == 0 || r.Signal > 64 {
		return nil, fmt.Errorf("kill: signal %d: %w", r.Signal, errdefs.ErrInvalidArgument)
	}
	if r.ExecId != "" {
		return &shimv1.KillResponse{}, s.killExec(r.ExecId, r.Signal)
	}
	if st, _, _ := s.snapshot(); st == shimv1.Status_STATUS_STOPPED {
		return &shimv1.KillResponse{}, nil
	}
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	args := []string{"kill"}
	if r.All {
		args = append(args, "--all")
	}
	args = append(args, s.cfg.ID, fmt.Sprint(r.Signal))
	if err := s.rt.Run(ctx, runtime.Stdio{}, args...); err != nil {
		if st, _, _ := s.snapshot(); st == shimv1.Status_STATUS_STOPPED || runtime.IsNotExist(err) ||
			containsAny(err.Error(), "not running", "process already finished") {
			return &shimv1.KillResponse{}, nil
		}
		return nil, fmt.Errorf("kill container %s: %w", s.cfg.ID, err)
	}
	return &shimv1.KillResponse{}, nil
}

func (s *service) ResizePty(ctx context.Context, r *shimv1.ResizePtyRequest) (*shimv1.ResizePtyResponse, error) {
	if r.ExecId != "" {
		return &shimv1.ResizePtyResponse{}, s.resizeExec(r.ExecId, r.Width, r.Height)
	}
	return &shimv1.ResizePtyResponse{}, s.io.resize(r.Width, r.Height)
}

func (s *service) ReopenLog(ctx context.Context, _ *shimv1.ReopenLogRequest) (*shimv1.ReopenLogResponse, error) {
	if err := s.clog.Reopen(); err != nil {
		return nil, fmt.Errorf("reopen log of container %s: %w", s.cfg.ID, err)
	}
	return &shimv1.ReopenLogResponse{}, nil
}

func (s *service) Update(ctx context.Context, r *shimv1.UpdateRequest) (*shimv1.UpdateResponse, error) {
	if len(r.ResourcesJson) == 0 {
		return nil, fmt.Errorf("update: no resources: %w", errdefs.ErrInvalidArgument)
	}
	if st, _, _ := s.snapshot(); st == shimv1.Status_STATUS_STOPPED {
		return nil, fmt.Errorf("update container %s: stopped: %w", s.cfg.ID, errdefs.ErrFailedPrecondition)
	}
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	f, err := os.CreateTemp(s.cfg.StateDir, "update-*.json")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(r.ResourcesJson)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.rt.Run(ctx, runtime.Stdio{}, "update", "--resources", f.Name(), s.cfg.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("update container %s: %w", s.cfg.ID, err)
	}
	return &shimv1.UpdateResponse{}, nil
}

func (s *service) Delete(ctx context.Context, _ *shimv1.DeleteRequest) (*shimv1.DeleteResponse, error) {
	if st, _, _ := s.snapshot(); st == shimv1.Status_STATUS_RUNNING {
		return nil, fmt.Errorf("delete container %s: still running: %w", s.cfg.ID, errdefs.ErrFailedPrecondition)
	}
	ctx, cancel := withDeadline(ctx)
	defer cancel()
	if err := s.rt.Run(ctx, runtime.Stdio{}, "delete", "--force", s.cfg.ID); err != nil && !runtime.IsNotExist(err) {
		return nil, fmt.Errorf("delete container %s: %w", s.cfg.ID, err)
	}
	// A created container's init dies with the delete: wait for its exit
	// to be recorded so State and the exit file agree.
	select {
	case <-s.exited:
	case <-ctx.Done():
		return nil, fmt.Errorf("delete container %s: %w", s.cfg.ID, ctx.Err())
	}
	s.mu.Lock()
	s.deleted = true
	s.mu.Unlock()
	return &shimv1.DeleteResponse{}, nil
}

func (s *service) Shutdown(ctx context.Context, _ *shimv1.ShutdownRequest) (*shimv1.ShutdownResponse, error) {
	if st, _, _ := s.snapshot(); st != shimv1.Status_STATUS_STOPPED {
		return nil, fmt.Errorf("shutdown shim of container %s in state %s: %w", s.cfg.ID, st, errdefs.ErrFailedPrecondition)
	}
	s.doneOnce.Do(func() { close(s.done) })
	return &shimv1.ShutdownResponse{}, nil
}

// withDeadline bounds a runtime call when the caller set no deadline.
func withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Minute)
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
