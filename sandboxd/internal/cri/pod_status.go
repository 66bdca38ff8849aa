package cri

import (
	"context"
	"encoding/json"
	"time"

	"flotilla.dev/sandboxd/internal/store"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// PodSandboxStatus returns the pod's status with its containers' statuses.
func (s *Service) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	p, err := s.lookupPod(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.PodSandboxStatusResponse{
		Status:             s.podStatus(p),
		ContainersStatuses: s.containerStatuses(p.id),
		Timestamp:          time.Now().UnixNano(),
	}
	if req.GetVerbose() {
		snap := p.snapshot()
		info, _ := json.Marshal(map[string]any{
			"netns": snap.NetNS, "ipcns": snap.IPCNS, "utsns": snap.UTSNS, "shm": snap.ShmPath,
			"cgroup_parent": snap.CgroupParent, "dir": snap.Dir, "infra_container_id": snap.InfraID,
		})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func (s *Service) podStatus(p *sandbox) *runtimeapi.PodSandboxStatus {
	r := p.snapshot()
	cfg := p.cfg
	st := &runtimeapi.PodSandboxStatus{
		Id:             r.ID,
		Metadata:       cfg.GetMetadata(),
		State:          runtimeapi.PodSandboxState_SANDBOX_NOTREADY,
		CreatedAt:      r.CreatedAt,
		Labels:         cfg.GetLabels(),
		Annotations:    cfg.GetAnnotations(),
		RuntimeHandler: r.RuntimeHandler,
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: cfg.GetLinux().GetSecurityContext().GetNamespaceOptions(),
		}},
		Network: &runtimeapi.PodSandboxNetworkStatus{},
	}
	if r.State == store.PodReady {
		st.State = runtimeapi.PodSandboxState_SANDBOX_READY
	}
	if len(r.IPs) > 0 && r.State == store.PodReady {
		st.Network.Ip = r.IPs[0]
		for _, ip := range r.IPs[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	return st
}

func (s *Service) containerStatuses(podID string) []*runtimeapi.ContainerStatus {
	var out []*runtimeapi.ContainerStatus
	for _, c := range s.podContainers(podID) {
		if !c.infra {
			out = append(out, s.containerStatus(c))
		}
	}
	return out
}
