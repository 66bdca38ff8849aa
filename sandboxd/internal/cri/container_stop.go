package cri

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"flotilla.dev/sandboxd/internal/store"
	shimclient "flotilla.dev/shim/client"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StopContainer sends the image's stop signal, waits up to the timeout,
// then kills. Stopping an exited or missing container succeeds.
func (s *Service) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, err := s.lookupContainer(req.GetContainerId())
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if req.GetTimeout() < 0 {
		return nil, fmt.Errorf("stop timeout %d is negative: %w", req.GetTimeout(), errdefs.ErrInvalidArgument)
	}
	cctx, cancel := timeout(ctx, time.Duration(req.GetTimeout())*time.Second+callTimeout)
	defer cancel()
	if err := s.stopContainer(cctx, c, time.Duration(req.GetTimeout())*time.Second); err != nil {
		return nil, fmt.Errorf("stop container %s: %w", c.id, err)
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

func (s *Service) stopContainer(ctx context.Context, c *container, grace time.Duration) error {
	c.op.Lock()
	defer c.op.Unlock()
	snap := c.snapshot()
	switch snap.State {
	case store.ContainerExited:
		return nil
	case store.ContainerCreated:
		// Never started: nothing runs but `runc init`; kill it and record it.
		if c.shim != nil {
			_ = c.shim.Kill(ctx, syscall.SIGKILL, true)
		}
		s.recordExit(c, shimclient.Exit{Code: 137, ExitedAt: time.Now()})
		return nil
	}
	if c.shim == nil {
		// Unknown and no shim: the process is gone with it.
		s.recordExit(c, shimclient.Exit{Code: 137, ExitedAt: time.Now()})
		return nil
	}
	if grace > 0 {
		sig := stopSignal(snap.StopSignal)
		if err := c.shim.Kill(ctx, sig, false); err != nil {
			return fmt.Errorf("signal %v: %w", sig, err)
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-c.exit:
			return nil
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := c.shim.Kill(ctx, syscall.SIGKILL, true); err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	select {
	case <-c.exit:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait for exit after SIGKILL: %w", ctx.Err())
	}
}

func stopSignal(name string) syscall.Signal {
	if name == "" {
		return syscall.SIGTERM
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig
	}
	if sig := unix.SignalNum("SIG" + name); sig != 0 {
		return sig
	}
	return syscall.SIGTERM
}
