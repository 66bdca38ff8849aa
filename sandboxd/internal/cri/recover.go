package cri

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	flog "flotilla.dev/lib/log"
	"flotilla.dev/sandboxd/internal/nsutil"
	"flotilla.dev/sandboxd/internal/store"
	shimclient "flotilla.dev/shim/client"
	"github.com/containerd/errdefs"
)

// recover loads the records after a (re)start: pods as they were;
// containers reconnect to their shims, or get their exit from the exit
// file when the shim is gone.
func (s *Service) recover(ctx context.Context) error {
	pods, err := s.Store.Pods()
	if err != nil {
		return fmt.Errorf("load pods: %w", err)
	}
	for _, r := range pods {
		cfg, err := r.PodConfig()
		if err != nil {
			return err
		}
		if r.State == store.PodReady && (r.UTSNS != "" && !nsutil.IsPinned(r.UTSNS, nsutil.UTS) ||
			r.IPCNS != "" && !nsutil.IsPinned(r.IPCNS, nsutil.IPC)) {
			// The namespaces are gone (a reboot): the pod cannot run anything.
			r.State, r.NetNS = store.PodNotReady, ""
			if err := s.Store.PutPod(r); err != nil {
				return err
			}
		}
		s.pods[r.ID] = newSandbox(r, cfg)
		s.podNames.Bind(podName(cfg.GetMetadata()), r.NameKey, r.ID)
	}
	ctrs, err := s.Store.Containers()
	if err != nil {
		return fmt.Errorf("load containers: %w", err)
	}
	for _, r := range ctrs {
		cfg, err := r.ContainerConfig()
		if err != nil {
			return err
		}
		c := newContainer(r, cfg, nil)
		s.ctrs[r.ID] = c
		s.ctrNames.Bind(ctrName(r.PodID, cfg.GetMetadata()), r.NameKey, r.ID)
		s.reattach(ctx, c)
	}
	if len(pods)+len(ctrs) > 0 {
		s.Log.Info("records recovered", "pods", len(pods), "containers", len(ctrs))
	}
	return nil
}

func (s *Service) reattach(ctx context.Context, c *container) {
	r := c.rec
	log := s.Log.With(flog.KeyContainerID, r.ID)
	if r.State == store.ContainerExited {
		close(c.exit)
		return
	}
	stateDir := filepath.Join(r.Bundle, "shim")
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	sh, err := s.Shims.Connect(cctx, stateDir)
	cancel()
	if err == nil {
		c.shim = sh
		st, err := sh.State(ctx)
		if err == nil {
			switch st.Status {
			case shimclient.StatusStopped:
				s.recordExit(c, st.Exit)
				return
			case shimclient.StatusRunning:
				if r.State != store.ContainerRunning {
					_ = s.saveContainer(c, func(x *store.Container) error {
						x.State, x.Pid = store.ContainerRunning, uint32(st.Pid)
						if x.StartedAt == 0 {
							x.StartedAt = st.StartedAt.UnixNano()
						}
						return nil
					})
				}
				s.monitor(c)
				return
			case shimclient.StatusCreated:
				return
			}
		}
		log.Warn("shim state after restart", flog.KeyError, err)
		s.monitor(c)
		return
	}
	// No shim: the exit file says how the container ended.
	exit, ferr := s.Shims.ReadExitFile(stateDir)
	if ferr == nil {
		s.recordExit(c, exit)
		return
	}
	if errors.Is(ferr, errdefs.ErrNotFound) && r.State == store.ContainerCreated {
		// Created but its shim is gone: it can never start.
		s.recordExit(c, shimclient.Exit{Code: 128, ExitedAt: time.Now()})
		_ = s.saveContainer(c, func(x *store.Container) error { x.Message = "shim gone before start"; return nil })
		return
	}
	log.Warn("container state unknown after restart", flog.KeyError, errors.Join(err, ferr))
	_ = s.saveContainer(c, func(x *store.Container) error {
		x.State, x.Message = store.ContainerUnknown, "shim unreachable and no exit file"
		return nil
	})
}
