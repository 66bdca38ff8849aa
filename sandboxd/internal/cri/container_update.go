package cri

import (
	"context"
	"fmt"

	"flotilla.dev/sandboxd/internal/oci"
	"flotilla.dev/sandboxd/internal/store"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// UpdateContainerResources applies new CPU/memory resources to a created or
// running container (`runtime update`).
func (s *Service) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	c, err := s.lookupContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	lin := req.GetLinux()
	if lin == nil {
		return nil, fmt.Errorf("update container resources: linux resources are required: %w", errdefs.ErrInvalidArgument)
	}
	var res specs.LinuxResources
	if err := oci.Resources(&res, lin); err != nil {
		return nil, err
	}
	cctx, cancel := timeout(ctx, callTimeout)
	defer cancel()
	c.op.Lock()
	defer c.op.Unlock()
	snap := c.snapshot()
	if snap.State != store.ContainerCreated && snap.State != store.ContainerRunning {
		return nil, fmt.Errorf("update container %s: container is %s: %w", snap.ID, snap.State, errdefs.ErrFailedPrecondition)
	}
	if c.shim == nil {
		return nil, fmt.Errorf("update container %s: shim is gone: %w", snap.ID, errdefs.ErrUnavailable)
	}
	if err := c.shim.Update(cctx, &res); err != nil {
		return nil, fmt.Errorf("update container %s: %w", snap.ID, err)
	}
	data, _ := marshal(lin)
	if err := s.saveContainer(c, func(r *store.Container) error { r.Resources = data; return nil }); err != nil {
		return nil, err
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// ReopenContainerLog makes the shim reopen the container's log file.
func (s *Service) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, err := s.lookupContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	snap := c.snapshot()
	if snap.State != store.ContainerRunning || c.shim == nil {
		return nil, fmt.Errorf("reopen log of container %s: container is %s: %w", snap.ID, snap.State, errdefs.ErrFailedPrecondition)
	}
	cctx, cancel := timeout(ctx, callTimeout)
	defer cancel()
	if err := c.shim.ReopenLog(cctx); err != nil {
		return nil, fmt.Errorf("reopen log of container %s: %w", snap.ID, err)
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
