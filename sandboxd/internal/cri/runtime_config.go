package cri

import (
	"context"
	"fmt"

	netv1 "flotilla.dev/proto/net/v1"
	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RuntimeConfig tells the kubelet which cgroup driver is in use.
func (s *Service) RuntimeConfig(context.Context, *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{
		CgroupDriver: runtimeapi.CgroupDriver_CGROUPFS,
	}}, nil
}

// UpdateRuntimeConfig passes the node's pod CIDR on to netd.
func (s *Service) UpdateRuntimeConfig(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	cidr := req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr()
	if cidr == "" {
		return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
	}
	if s.Net == nil {
		return nil, fmt.Errorf("update runtime config: netd is not configured: %w", errdefs.ErrUnavailable)
	}
	cctx, cancel := timeout(ctx, callTimeout)
	defer cancel()
	if _, err := s.Net.UpdateConfig(cctx, &netv1.UpdateConfigRequest{PodCidr: cidr}); err != nil {
		return nil, fmt.Errorf("update runtime config: %w", err)
	}
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

// CheckpointContainer is not supported: CRIU does not work on this kernel.
func (s *Service) CheckpointContainer(context.Context, *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	return nil, fmt.Errorf("checkpoint container is unsupported by flotilla: %w", errdefs.ErrNotImplemented)
}
