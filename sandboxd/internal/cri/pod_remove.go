package cri

import (
	"context"
	"errors"
	"fmt"
	"os"

	flog "flotilla.dev/lib/log"
	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RemovePodSandbox stops the pod if needed, removes its containers and
// everything it holds. Removing a missing pod succeeds.
func (s *Service) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	p, err := s.lookupPod(req.GetPodSandboxId())
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	cctx, cancel := timeout(ctx, callTimeout)
	defer cancel()
	p.op.Lock()
	defer p.op.Unlock()
	id := p.id
	if err := s.stopPod(cctx, p); err != nil {
		return nil, fmt.Errorf("remove pod sandbox %s: %w", id, err)
	}
	for _, c := range s.podContainers(id) {
		if err := s.removeContainer(cctx, c); err != nil {
			return nil, fmt.Errorf("remove pod sandbox %s: %w", id, err)
		}
	}
	if err := os.RemoveAll(p.dir); err != nil {
		return nil, fmt.Errorf("remove pod sandbox %s: %w", id, err)
	}
	if err := s.Store.DeletePod(id); err != nil {
		return nil, fmt.Errorf("remove pod sandbox %s: %w", id, err)
	}
	s.mu.Lock()
	delete(s.pods, id)
	s.mu.Unlock()
	s.podNames.Release(podName(p.cfg.GetMetadata()), id)
	flog.From(ctx).Info("pod sandbox removed", flog.KeyPodID, id)
	s.publishPod(p, "removed")
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}
