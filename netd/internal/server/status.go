package server

import (
	"context"
	"fmt"
	"net"

	"flotilla.dev/lib/netns"
	"flotilla.dev/netd/internal/store"
	netv1 "flotilla.dev/proto/net/v1"
	"github.com/containerd/errdefs"
	"github.com/containernetworking/cni/libcni"
)

// Status reports network readiness: ready once a valid conflist whose
// plugins exist is in cni_conf_dir (re-read when the directory changes).
func (s *Service) Status(ctx context.Context, _ *netv1.StatusRequest) (*netv1.StatusResponse, error) {
	st := s.network()
	if !st.Ready() {
		return &netv1.StatusResponse{Ready: false, Reason: st.Reason, Message: st.Message}, nil
	}
	return &netv1.StatusResponse{Ready: true, Network: st.List.Name}, nil
}

// PodStatus returns the pod's namespace and IPs.
func (s *Service) PodStatus(ctx context.Context, req *netv1.PodStatusRequest) (*netv1.PodStatusResponse, error) {
	rec, err := s.ready(req.GetPodId())
	if err != nil {
		return nil, err
	}
	return &netv1.PodStatusResponse{Network: toProto(rec)}, nil
}

func (s *Service) ready(id string) (*store.Record, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	rec, err := s.store.Get(id)
	if err != nil {
		return nil, err
	}
	if rec.Phase != store.Ready {
		return nil, fmt.Errorf("pod network %s is being set up: %w", id, errdefs.ErrNotFound)
	}
	return rec, nil
}

// CheckPod runs CNI CHECK with the conflist the pod was set up with.
func (s *Service) CheckPod(ctx context.Context, req *netv1.CheckPodRequest) (*netv1.CheckPodResponse, error) {
	id := req.GetPodId()
	if err := validID(id); err != nil {
		return nil, err
	}
	unlock := s.lock(id)
	defer unlock()
	rec, err := s.ready(id)
	if err != nil {
		return nil, err
	}
	if !netns.IsPinned(rec.NetNS) {
		return nil, fmt.Errorf("pod %s: network namespace %s is gone: %w", id, rec.NetNS, errdefs.ErrFailedPrecondition)
	}
	list, err := libcni.NetworkConfFromBytes(rec.ConfList)
	if err != nil {
		return nil, fmt.Errorf("pod %s: stored conflist: %w", id, err)
	}
	cctx, cancel := context.WithTimeout(ctx, pluginTimeout)
	defer cancel()
	if err := s.runner.Check(cctx, list, id, rec.NetNS, rec.Args, rec.CapabilityArgs); err != nil {
		return nil, fmt.Errorf("pod %s: network %q: %w", id, list.Name, err)
	}
	return &netv1.CheckPodResponse{}, nil
}

// ListPods lists the pods with a network.
func (s *Service) ListPods(ctx context.Context, _ *netv1.ListPodsRequest) (*netv1.ListPodsResponse, error) {
	recs, _ := s.store.List()
	resp := &netv1.ListPodsResponse{}
	for _, r := range recs {
		if r.Phase == store.Ready {
			resp.Networks = append(resp.Networks, toProto(r))
		}
	}
	return resp, nil
}

// UpdateConfig takes the pod CIDR from the kubelet; it is passed to plugins
// declaring the ipRanges capability (host-local) for pods set up later.
func (s *Service) UpdateConfig(ctx context.Context, req *netv1.UpdateConfigRequest) (*netv1.UpdateConfigResponse, error) {
	cidr := req.GetPodCidr()
	if cidr != "" {
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			return nil, fmt.Errorf("pod CIDR %q: %w", cidr, errdefs.ErrInvalidArgument)
		}
	}
	s.mu.Lock()
	s.podCIDR = cidr
	s.mu.Unlock()
	return &netv1.UpdateConfigResponse{}, nil
}
