package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ImageStatus implements runtime.v1.ImageService: a nil image when absent.
func (s *Service) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	img, err := s.Lookup(req.GetImage().GetImage())
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	out, err := s.toCRI(img)
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ImageStatusResponse{Image: out}
	if req.GetVerbose() {
		c, _, err := s.config(img)
		if err != nil {
			return nil, err
		}
		info := struct {
			ID          string   `json:"id"`
			RepoTags    []string `json:"repoTags"`
			RepoDigests []string `json:"repoDigests"`
			Size        uint64   `json:"size"`
			TopLayer    string   `json:"topLayer"`
			Labels      any      `json:"labels"`
			ImageSpec   any      `json:"imageSpec"`
			Pinned      bool     `json:"pinned"`
		}{img.ID, out.RepoTags, out.RepoDigests, out.Size, img.TopLayer, c.Config.Labels, c, out.Pinned}
		b, err := json.Marshal(info)
		if err != nil {
			return nil, fmt.Errorf("encode image info: %w", err)
		}
		resp.Info = map[string]string{"info": string(b)}
	}
	return resp, nil
}
