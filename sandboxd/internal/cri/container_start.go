package cri

import (
	"context"
	"errors"
	"fmt"
	"time"

	flog "flotilla.dev/lib/log"
	"flotilla.dev/lib/metrics"
	"flotilla.dev/sandboxd/internal/store"
	shimclient "flotilla.dev/shim/client"
	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StartContainer starts a created container.
func (s *Service) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.lookupContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	cctx, cancel := timeout(ctx, callTimeout)
	defer cancel()
	p, err := s.lookupPod(c.podID)
	if err != nil {
		return nil, fmt.Errorf("start container %s: %w", c.id, err)
	}
	p.op.Lock() // ordered with StopPodSandbox, as for create
	defer p.op.Unlock()
	if err := s.startContainer(cctx, c); err != nil {
		return nil, fmt.Errorf("start container %s: %w", c.id, err)
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

func (s *Service) startContainer(ctx context.Context, c *container) error {
	c.op.Lock()
	defer c.op.Unlock()
	snap := c.snapshot()
	if err := snap.State.To(store.ContainerRunning); err != nil || snap.State != store.ContainerCreated {
		return fmt.Errorf("container is %s, not created: %w", snap.State, errdefs.ErrFailedPrecondition)
	}
	if p, err := s.lookupPod(snap.PodID); err != nil || p.snapshot().State != store.PodReady {
		return fmt.Errorf("pod sandbox %s is not ready: %w", snap.PodID, errdefs.ErrFailedPrecondition)
	}
	if c.shim == nil {
		return fmt.Errorf("shim of container %s is gone: %w", snap.ID, errdefs.ErrUnavailable)
	}
	ph := metrics.StartPhases("start_container")
	defer ph.Done(flog.From(ctx).With(flog.KeyContainerID, snap.ID))
	pid, err := c.shim.Start(ctx)
	ph.Mark("shim_runtime_start")
	if err != nil {
		// The container cannot run any more: record why.
		_ = s.saveContainer(c, func(r *store.Container) error {
			r.State, r.ExitCode, r.Reason, r.Message = store.ContainerExited, 128, "StartError", err.Error()
			r.FinishedAt = time.Now().UnixNano()
			return nil
		})
		close(c.exit)
		s.publishContainer(c, "exited")
		return err
	}
	if err := s.saveContainer(c, func(r *store.Container) error {
		if err := r.State.To(store.ContainerRunning); err != nil {
			return err
		}
		r.State, r.Pid, r.StartedAt = store.ContainerRunning, uint32(pid), time.Now().UnixNano()
		return nil
	}); err != nil {
		return err
	}
	ph.Mark("store")
	flog.From(ctx).Info("container started", flog.KeyContainerID, snap.ID, "pid", pid)
	s.publishContainer(c, "started")
	s.monitor(c)
	return nil
}

// monitor waits for the container's exit in the background and records it.
func (s *Service) monitor(c *container) {
	sh := c.shim
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		exit, err := sh.Wait(s.bg)
		if s.bg.Err() != nil {
			return // sandboxd is stopping; a restart picks the container up
		}
		if err != nil {
			// The shim went away: its exit file tells how the container ended.
			e, ferr := s.Shims.ReadExitFile(c.bundle + "/shim")
			if ferr != nil {
				s.Log.Warn("container exit unknown", flog.KeyContainerID, c.id, flog.KeyError, errors.Join(err, ferr))
				_ = s.saveContainer(c, func(r *store.Container) error {
					r.State, r.Message = store.ContainerUnknown, "shim lost: "+err.Error()
					return nil
				})
				return
			}
			exit = e
		}
		s.recordExit(c, exit)
	}()
}

// recordExit stores the exit once and publishes it.
func (s *Service) recordExit(c *container, exit shimclient.Exit) {
	changed := false
	_ = s.saveContainer(c, func(r *store.Container) error {
		if r.State == store.ContainerExited {
			return errors.New("already exited")
		}
		changed = true
		r.State, r.ExitCode = store.ContainerExited, exit.Code
		r.FinishedAt = exit.ExitedAt.UnixNano()
		if exit.ExitedAt.IsZero() {
			r.FinishedAt = time.Now().UnixNano()
		}
		switch {
		case exit.OOMKilled:
			r.Reason = "OOMKilled"
		case exit.Code == 0:
			r.Reason = "Completed"
		default:
			r.Reason = "Error"
		}
		return nil
	})
	if !changed {
		return
	}
	s.Log.Info("container exited", flog.KeyContainerID, c.id, "exit_code", exit.Code, "oom", exit.OOMKilled)
	if exit.OOMKilled {
		s.publishContainer(c, "oom")
	}
	s.publishContainer(c, "exited")
	close(c.exit) // after the events: a waiter sees them published
}
