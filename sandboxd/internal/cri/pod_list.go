package cri

import (
	"context"
	"sort"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListPodSandbox lists pods matching the filter.
func (s *Service) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	return &runtimeapi.ListPodSandboxResponse{Items: s.listPods(req.GetFilter())}, nil
}

// StreamPodSandboxes sends the same list as ListPodSandbox in batches.
func (s *Service) StreamPodSandboxes(req *runtimeapi.StreamPodSandboxesRequest, stream runtimeapi.RuntimeService_StreamPodSandboxesServer) error {
	all := s.listPods(req.GetFilter())
	for i := 0; i < len(all) || i == 0; i += streamBatch {
		end := min(i+streamBatch, len(all))
		if err := stream.Send(&runtimeapi.StreamPodSandboxesResponse{PodSandboxes: all[i:end]}); err != nil {
			return err
		}
		if end == len(all) {
			break
		}
	}
	return nil
}

func (s *Service) listPods(f *runtimeapi.PodSandboxFilter) []*runtimeapi.PodSandbox {
	s.mu.RLock()
	pods := make([]*sandbox, 0, len(s.pods))
	for _, p := range s.pods {
		pods = append(pods, p)
	}
	s.mu.RUnlock()
	var out []*runtimeapi.PodSandbox
	for _, p := range pods {
		st := s.podStatus(p)
		if f.GetId() != "" && !strings.HasPrefix(st.Id, f.GetId()) {
			continue
		}
		if f.GetState() != nil && f.GetState().GetState() != st.State {
			continue
		}
		if !matchLabels(f.GetLabelSelector(), st.Labels) {
			continue
		}
		out = append(out, &runtimeapi.PodSandbox{Id: st.Id, Metadata: st.Metadata, State: st.State,
			CreatedAt: st.CreatedAt, Labels: st.Labels, Annotations: st.Annotations, RuntimeHandler: st.RuntimeHandler})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt < out[j].CreatedAt })
	return out
}

func matchLabels(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
