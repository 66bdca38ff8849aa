package cri

import (
	"context"
	"sort"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListContainers lists containers matching the filter (ids match by prefix).
func (s *Service) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	return &runtimeapi.ListContainersResponse{Containers: s.listContainers(req.GetFilter())}, nil
}

// StreamContainers sends the same list as ListContainers in batches.
func (s *Service) StreamContainers(req *runtimeapi.StreamContainersRequest, stream runtimeapi.RuntimeService_StreamContainersServer) error {
	all := s.listContainers(req.GetFilter())
	for i := 0; i < len(all) || i == 0; i += streamBatch {
		end := min(i+streamBatch, len(all))
		if err := stream.Send(&runtimeapi.StreamContainersResponse{Containers: all[i:end]}); err != nil {
			return err
		}
		if end == len(all) {
			break
		}
	}
	return nil
}

const streamBatch = 256

func (s *Service) listContainers(f *runtimeapi.ContainerFilter) []*runtimeapi.Container {
	s.mu.RLock()
	all := make([]*container, 0, len(s.ctrs))
	for _, c := range s.ctrs {
		if !c.infra {
			all = append(all, c)
		}
	}
	s.mu.RUnlock()
	var out []*runtimeapi.Container
	for _, c := range all {
		st := s.containerStatus(c)
		podID := c.podID
		if f.GetId() != "" && !strings.HasPrefix(st.Id, f.GetId()) {
			continue
		}
		if f.GetPodSandboxId() != "" && !strings.HasPrefix(podID, f.GetPodSandboxId()) {
			continue
		}
		if f.GetState() != nil && f.GetState().GetState() != st.State {
			continue
		}
		if !matchLabels(f.GetLabelSelector(), st.Labels) {
			continue
		}
		out = append(out, &runtimeapi.Container{Id: st.Id, PodSandboxId: podID, Metadata: st.Metadata,
			Image: st.Image, ImageRef: st.ImageRef, ImageId: st.ImageId, State: st.State, CreatedAt: st.CreatedAt,
			Labels: st.Labels, Annotations: st.Annotations})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt < out[j].CreatedAt })
	return out
}
