package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Restart backoff, like systemd's Restart=on-failure with RestartSec.
const (
	minBackoff = time.Second
	maxBackoff = 10 * time.Second
	// A daemon up this long has its backoff reset.
	stableAfter = 30 * time.Second
	stopTimeout = 10 * time.Second
)

// Fleet is a running set of daemons.
type Fleet struct {
	Layout Layout
	opts   Options
	log    *slog.Logger

	mu    sync.Mutex
	procs map[string]*proc
	wg    sync.WaitGroup
	stop  chan struct{}
}

type proc struct {
	name     string
	cmd      *exec.Cmd
	exited   chan struct{}
	restarts int
}

// Start writes the fleet's configuration and starts every daemon.
func Start(o Options, log *slog.Logger) (*Fleet, error) {
	if o.Root == "" || o.BinDir == "" {
		return nil, errors.New("fleet: root and bin dir must be set")
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return nil, err
	}
	o.Root = root
	for _, b := range append(append([]string{}, Daemons...), "flotilla-shim") {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return nil, fmt.Errorf("fleet: binary %s missing in %s (run make build)", b, o.BinDir)
		}
	}
	l, err := WriteConfig(&o)
	if err != nil {
		return nil, fmt.Errorf("fleet: write config: %w", err)
	}
	f := &Fleet{Layout: l, opts: o, log: log, procs: map[string]*proc{}, stop: make(chan struct{})}
	for _, d := range Daemons {
		if err := f.spawn(d); err != nil {
			f.Stop()
			return nil, err
		}
		f.wg.Add(1)
		go f.supervise(d)
	}
	return f, nil
}

func (f *Fleet) spawn(name string) error {
	logf, err := os.OpenFile(f.Layout.LogFile(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(f.opts.BinDir, name), "--config", f.Layout.ConfigFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a Ctrl-C in the terminal reaches flotctl only,
	// which then stops the daemons in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.exited) }()
	_ = os.WriteFile(f.Layout.PidFile(name), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600)
	f.mu.Lock()
	if old := f.procs[name]; old != nil {
		p.restarts = old.restarts
	}
	f.procs[name] = p
	f.mu.Unlock()
	f.log.Info("daemon started", "daemon", name, "pid", cmd.Process.Pid, "log", f.Layout.LogFile(name))
	return nil
}

func (f *Fleet) supervise(name string) {
	defer f.wg.Done()
	backoff := minBackoff
	for {
		f.mu.Lock()
		p := f.procs[name]
		f.mu.Unlock()
		started := time.Now()
		select {
		case <-f.stop:
			return
		case <-p.exited:
		}
		select {
		case <-f.stop:
			return
		default:
		}
		code := p.cmd.ProcessState.ExitCode()
		status := p.cmd.ProcessState.String()
		if !f.opts.Restart {
			f.log.Warn("daemon exited", "daemon", name, "status", status)
			return
		}
		if time.Since(started) > stableAfter {
			backoff = minBackoff
		}
		f.log.Warn("daemon exited, restarting", "daemon", name, "status", status, "exit_code", code, "backoff", backoff)
		select {
		case <-f.stop:
			return
		case <-time.After(backoff):
		}
		if err := f.spawn(name); err != nil {
			f.log.Error("restart failed", "daemon", name, "error", err)
		} else {
			f.mu.Lock()
			f.procs[name].restarts++
			f.mu.Unlock()
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// Pid returns a daemon's current pid (0 when not running).
func (f *Fleet) Pid(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.procs[name]
	if p == nil {
		return 0
	}
	select {
	case <-p.exited:
		return 0
	default:
		return p.cmd.Process.Pid
	}
}

// Restarts returns how often a daemon was restarted.
func (f *Fleet) Restarts(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p := f.procs[name]; p != nil {
		return p.restarts
	}
	return 0
}

// Kill sends sig to a daemon and waits until it has exited (the supervisor
// restarts it after its backoff when Restart is on).
func (f *Fleet) Kill(name string, sig syscall.Signal) error {
	f.mu.Lock()
	p := f.procs[name]
	f.mu.Unlock()
	if p == nil {
		return fmt.Errorf("no daemon %s", name)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return err
	}
	<-p.exited
	return nil
}

// Stop stops the daemons in reverse start order: SIGTERM, then SIGKILL
// after a grace period. Containers keep running (their shims outlive the
// daemons), as on a node where the runtime is restarted.
func (f *Fleet) Stop() {
	select {
	case <-f.stop:
		return
	default:
		close(f.stop)
	}
	for i := len(Daemons) - 1; i >= 0; i-- {
		f.mu.Lock()
		p := f.procs[Daemons[i]]
		f.mu.Unlock()
		if p == nil {
			continue
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(stopTimeout):
			f.log.Warn("daemon did not stop, killing", "daemon", p.name)
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		_ = os.Remove(f.Layout.PidFile(p.name))
	}
	f.wg.Wait()
}

// Logs returns the tail of every daemon's log, for test failures.
func (f *Fleet) Logs(w io.Writer, maxBytes int64) {
	for _, d := range Daemons {
		fmt.Fprintf(w, "===== %s (%s) =====\n", d, f.Layout.LogFile(d))
		fh, err := os.Open(f.Layout.LogFile(d))
		if err != nil {
			fmt.Fprintln(w, err)
			continue
		}
		if st, err := fh.Stat(); err == nil && st.Size() > maxBytes {
			_, _ = fh.Seek(-maxBytes, io.SeekEnd)
		}
		_, _ = io.Copy(w, fh)
		fh.Close()
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitReady waits until every backend answers its health check and the CRI
// socket answers Status with RuntimeReady (and NetworkReady when network is
// set), or ctx ends; it returns the last status either way.
func (f *Fleet) WaitReady(ctx context.Context, network bool) (*Status, error) {
	var last *Status
	var lastErr error
	for {
		st, err := QueryStatus(ctx, f.Layout.CRISocket)
		if err == nil && st.RuntimeReady && (!network || st.NetworkReady) && f.DaemonsHealthy(ctx) {
			return st, nil
		}
		last, lastErr = st, err
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return last, fmt.Errorf("fleet not ready: %w", lastErr)
			}
			return last, fmt.Errorf("fleet not ready: %s", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
