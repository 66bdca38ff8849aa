// Package shim is flotilla-shim: it supervises one container through an
// OCI runtime binary and serves shim/v1 (ttrpc) on a unix socket.
//
// Start-up protocol with the client (shim/client.Spawn):
//  1. The client runs the shim (stage 1) with a sync pipe as fd 3.
//  2. Stage 1 re-executes itself (stage 2) in a new session (setsid) and
//     exits at once, so stage 2 is reparented away from the client and
//     outlives it.
//  3. Stage 2 becomes a child subreaper, runs `runtime create`, opens its
//     sockets and writes "ok\n" (or "error <text>\n") to fd 3, then serves.
package shim

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"flotilla.dev/shim/internal/layout"
)

const (
	stageEnv = "FLOTILLA_SHIM_STAGE"
	syncFd   = 3
)

// Main runs the shim and returns the process exit code.
func Main(args []string) int {
	if os.Getenv(stageEnv) != "2" {
		return stage1(args)
	}
	return stage2(args)
}

func stage1(args []string) int {
	cfg, err := ParseConfig(args)
	sync := os.NewFile(syncFd, "sync")
	if err != nil {
		report(sync, err)
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		report(sync, err)
		return 1
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		report(sync, err)
		return 1
	}
	logf, err := os.OpenFile(filepath.Join(cfg.StateDir, layout.ShimLogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		report(sync, err)
		return 1
	}
	env := append(os.Environ(), stageEnv+"=2", "GOMAXPROCS=1")
	_, err = syscall.ForkExec(self, append([]string{self}, args...), &syscall.ProcAttr{
		Dir:   "/",
		Env:   env,
		Files: []uintptr{null.Fd(), null.Fd(), logf.Fd(), sync.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		report(sync, fmt.Errorf("re-exec shim: %w", err))
		return 1
	}
	return 0
}

// report writes the start-up result to the client.
func report(sync *os.File, err error) {
	if err == nil {
		io.WriteString(sync, "ok\n")
	} else {
		fmt.Fprintf(sync, "error %s\n", err)
	}
	sync.Close()
}

func stage2(args []string) int {
	sync := os.NewFile(syncFd, "sync")
	syscall.CloseOnExec(syncFd)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, err := ParseConfig(args)
	if err != nil {
		report(sync, err)
		return 2
	}
	log = log.With("container_id", cfg.ID)
	syscall.Umask(0o077)
	signal.Ignore(syscall.SIGHUP, syscall.SIGPIPE, syscall.SIGINT)
	if err := os.Chdir(cfg.StateDir); err != nil {
		report(sync, err)
		return 1
	}
	if !filepath.IsAbs(cfg.Runtime) {
		p, err := exec.LookPath(cfg.Runtime)
		if err != nil {
			report(sync, fmt.Errorf("runtime %q: %w", cfg.Runtime, err))
			return 1
		}
		cfg.Runtime = p
	}
	// A reused state dir must not show a previous container's exit.
	if err := os.Remove(layout.ExitFile); err != nil && !os.IsNotExist(err) {
		report(sync, err)
		return 1
	}
	if err := layout.WriteFileAtomic(cfg.StateDir, layout.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		report(sync, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	s, err := newService(ctx, cfg, log)
	cancel()
	if err != nil {
		log.Error("create failed", "error", err)
		report(sync, err)
		return 1
	}
	report(sync, nil)
	s.serve()
	log.Info("shim exits")
	return 0
}
