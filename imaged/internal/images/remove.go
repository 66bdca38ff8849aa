package images

import (
	"context"
	"errors"
	"fmt"
	"strings"

	eventsv1 "flotilla.dev/proto/events/v1"
	"github.com/containerd/errdefs"
	"go.podman.io/storage"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RemoveImage implements runtime.v1.ImageService. A missing image succeeds.
// Removing by any name, tag or id deletes the image with all its tags (as the
// kubelet and critest expect), refused while a container uses it.
func (s *Service) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	spec := req.GetImage().GetImage()
	img, err := s.Lookup(spec)
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.RemoveImageResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if users := s.containersUsing(img.ID); len(users) > 0 {
		return nil, fmt.Errorf("image %s is in use by container %s: %w", img.ID, strings.Join(users, ", "), errdefs.ErrFailedPrecondition)
	}
	if _, err := s.o.Store.DeleteImage(img.ID, true); err != nil {
		switch {
		case errors.Is(err, storage.ErrImageUnknown), errors.Is(err, storage.ErrNotAnImage):
			// A concurrent RemoveImage got there first: already gone.
			return &runtimeapi.RemoveImageResponse{}, nil
		case errors.Is(err, storage.ErrImageUsedByContainer):
			return nil, fmt.Errorf("image %s is in use by container %s: %w", img.ID, strings.Join(s.containersUsing(img.ID), ", "), errdefs.ErrFailedPrecondition)
		}
		return nil, fmt.Errorf("remove image %s: %w", img.ID, err)
	}
	s.o.Bus.Publish(eventsv1.SubjectImageRemoved, imageEvent(spec, img.ID, "removed", ""))
	return &runtimeapi.RemoveImageResponse{}, nil
}

// containersUsing names the containers whose layer is on image id.
func (s *Service) containersUsing(id string) []string {
	cs, err := s.o.Store.Containers()
	if err != nil {
		return nil
	}
	var out []string
	for _, c := range cs {
		if c.ImageID == id {
			out = append(out, c.ID)
		}
	}
	return out
}
