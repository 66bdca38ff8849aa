package images

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// List returns the stored images, only the one matching filter when set.
func (s *Service) List(filter *runtimeapi.ImageFilter) ([]*runtimeapi.Image, error) {
	if spec := filter.GetImage().GetImage(); spec != "" {
		img, err := s.Lookup(spec)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		out, err := s.toCRI(img)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []*runtimeapi.Image{out}, nil
	}
	imgs, err := s.o.Store.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]*runtimeapi.Image, 0, len(imgs))
	for i := range imgs {
		c, err := s.toCRI(&imgs[i])
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out, nil
}

// ListImages implements runtime.v1.ImageService.
func (s *Service) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	imgs, err := s.List(req.GetFilter())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ListImagesResponse{Images: imgs}, nil
}
