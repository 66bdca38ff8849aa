package cri

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	flog "flotilla.dev/lib/log"
	imagev1 "flotilla.dev/proto/image/v1"
	"flotilla.dev/sandboxd/internal/store"
	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RemoveContainer kills the container if it runs and removes it.
// Removing a missing container succeeds.
func (s *Service) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, err := s.lookupContainer(req.GetContainerId())
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	cctx, cancel := timeout(ctx, callTimeout)
	defer cancel()
	if err := s.removeContainer(cctx, c); err != nil {
		return nil, fmt.Errorf("remove container %s: %w", c.id, err)
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

func (s *Service) removeContainer(ctx context.Context, c *container) error {
	if err := s.stopContainer(ctx, c, 0); err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	snap := c.snapshot()
	s.mu.RLock()
	_, present := s.ctrs[snap.ID]
	s.mu.RUnlock()
	if !present {
		return nil // removed concurrently
	}
	if c.shim != nil {
		if err := c.shim.Delete(ctx); err != nil {
			return fmt.Errorf("runtime delete: %w", err)
		}
		if err := c.shim.Shutdown(ctx); err != nil && !errors.Is(err, errdefs.ErrUnavailable) {
			return fmt.Errorf("shim shutdown: %w", err)
		}
		_ = c.shim.Close()
		c.shim = nil
	} else if err := s.runtimeDelete(ctx, snap); err != nil {
		return err
	}
	if s.Rootfs != nil {
		if _, err := s.Rootfs.RemoveRootfs(ctx, &imagev1.RemoveRootfsRequest{ContainerId: snap.ID}); err != nil {
			return fmt.Errorf("remove rootfs: %w", err)
		}
	}
	if err := s.removeImageVolumes(ctx, snap.ID, c.cfg.GetMounts()); err != nil {
		return err
	}
	if err := os.RemoveAll(snap.Bundle); err != nil {
		return err
	}
	if err := s.Store.DeleteContainer(snap.ID); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.ctrs, snap.ID)
	s.mu.Unlock()
	s.ctrNames.Release(ctrName(snap.PodID, c.cfg.GetMetadata()), snap.ID)
	flog.From(ctx).Info("container removed", flog.KeyContainerID, snap.ID)
	s.publishContainer(c, "removed")
	return nil
}

// runtimeDelete runs `runtime delete --force` when the container's shim is
// gone, so the runtime's state and cgroup do not outlive the record.
func (s *Service) runtimeDelete(ctx context.Context, r store.Container) error {
	handler := ""
	if p, err := s.lookupPod(r.PodID); err == nil {
		handler = p.snapshot().RuntimeHandler
	}
	rt, ok := s.Config.Runtime(handler)
	if !ok {
		return nil
	}
	out, err := exec.CommandContext(ctx, rt.Path, "--root", rt.Root, "delete", "--force", r.ID).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "does not exist") && !strings.Contains(string(out), "not exist") {
		return fmt.Errorf("%s delete: %v: %s", rt.Path, err, bytes.TrimSpace(out))
	}
	return nil
}
