package cri

import (
	"context"
	"errors"
	"fmt"

	flog "flotilla.dev/lib/log"
	netv1 "flotilla.dev/proto/net/v1"
	"flotilla.dev/sandboxd/internal/nsutil"
	"flotilla.dev/sandboxd/internal/store"
	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StopPodSandbox kills the pod's containers and releases its network,
// namespaces and /dev/shm. Stopping a stopped or missing pod succeeds.
func (s *Service) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	p, err := s.lookupPod(req.GetPodSandboxId())
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	cctx, cancel := timeout(ctx, callTimeout)
	defer cancel()
	p.op.Lock()
	defer p.op.Unlock()
	if err := s.stopPod(cctx, p); err != nil {
		return nil, fmt.Errorf("stop pod sandbox %s: %w", p.id, err)
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// stopPod runs with p.op held.
func (s *Service) stopPod(ctx context.Context, p *sandbox) error {
	snap := p.snapshot()
	for _, c := range s.podContainers(snap.ID) {
		if err := s.stopContainer(ctx, c, 0); err != nil {
			return err
		}
	}
	if snap.NetNS != "" && s.Net != nil {
		if _, err := s.Net.TeardownPod(ctx, &netv1.TeardownPodRequest{PodId: snap.ID}); err != nil {
			return fmt.Errorf("tear down network: %w", err)
		}
	}
	for _, err := range []error{nsutil.Unmount(snap.ShmPath), nsutil.Unpin(snap.IPCNS), nsutil.Unpin(snap.UTSNS)} {
		if err != nil {
			return err
		}
	}
	was := snap.State
	if err := s.savePod(p, func(r *store.Pod) { r.State = store.PodNotReady; r.NetNS = "" }); err != nil {
		return err
	}
	if was != store.PodNotReady {
		flog.From(ctx).Info("pod sandbox stopped", flog.KeyPodID, snap.ID)
		s.publishPod(p, "stopped")
	}
	return nil
}
