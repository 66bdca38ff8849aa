package cri

import (
	"context"
	"encoding/json"

	"flotilla.dev/sandboxd/internal/store"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerStatus returns the container's status.
func (s *Service) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.lookupContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ContainerStatusResponse{Status: s.containerStatus(c)}
	if req.GetVerbose() {
		r := c.snapshot()
		info, _ := json.Marshal(map[string]any{"pid": r.Pid, "bundle": r.Bundle, "sandbox_id": r.PodID})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

var criStates = map[store.ContainerState]runtimeapi.ContainerState{
	store.ContainerCreated: runtimeapi.ContainerState_CONTAINER_CREATED,
	store.ContainerRunning: runtimeapi.ContainerState_CONTAINER_RUNNING,
	store.ContainerExited:  runtimeapi.ContainerState_CONTAINER_EXITED,
	store.ContainerUnknown: runtimeapi.ContainerState_CONTAINER_UNKNOWN,
}

func (s *Service) containerStatus(c *container) *runtimeapi.ContainerStatus {
	r := c.snapshot()
	cfg := c.cfg
	st := &runtimeapi.ContainerStatus{
		Id: r.ID, Metadata: cfg.GetMetadata(), State: criStates[r.State],
		CreatedAt: r.CreatedAt, StartedAt: r.StartedAt, FinishedAt: r.FinishedAt,
		ExitCode: r.ExitCode, Reason: r.Reason, Message: r.Message,
		Image: cfg.GetImage(), ImageRef: r.ImageRef, ImageId: r.ImageID,
		Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations(),
		Mounts: cfg.GetMounts(), LogPath: r.LogPath,
	}
	u := &runtimeapi.LinuxContainerUser{Uid: int64(r.UID), Gid: int64(r.GID)}
	for _, g := range r.Groups {
		u.SupplementalGroups = append(u.SupplementalGroups, int64(g))
	}
	st.User = &runtimeapi.ContainerUser{Linux: u}
	if res, err := r.ContainerResources(); err == nil && res != nil {
		st.Resources = &runtimeapi.ContainerResources{Linux: res}
	}
	return st
}
