package images

import (
	"context"
	"errors"
	"fmt"
	"strings"

	eventsv1 "flotilla.dev/proto/events/v1"
	"github.com/containerd/errdefs"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/storage"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RemoveImage implements runtime.v1.ImageService. A missing image succeeds.
// Removing by one of several tags removes only that tag; removing by id (or
// the last name) deletes the image, refused while a container uses it.
func (s *Service) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	spec := req.GetImage().GetImage()
	img, err := s.Lookup(spec)
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtimeapi.RemoveImageResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if name := s.matchedName(img, spec); name != "" && len(img.Names) > 1 {
		if err := s.o.Store.RemoveNames(img.ID, []string{name}); err != nil {
			return nil, fmt.Errorf("untag %s: %w", name, err)
		}
		return &runtimeapi.RemoveImageResponse{}, nil
	}
	if users := s.containersUsing(img.ID); len(users) > 0 {
		return nil, fmt.Errorf("image %s is in use by container %s: %w", img.ID, strings.Join(users, ", "), errdefs.ErrFailedPrecondition)
	}
	if _, err := s.o.Store.DeleteImage(img.ID, true); err != nil {
		switch {
		case errors.Is(err, storage.ErrImageUnknown):
			return &runtimeapi.RemoveImageResponse{}, nil
		case errors.Is(err, storage.ErrImageUsedByContainer):
			return nil, fmt.Errorf("image %s is in use by container %s: %w", img.ID, strings.Join(s.containersUsing(img.ID), ", "), errdefs.ErrFailedPrecondition)
		}
		return nil, fmt.Errorf("remove image %s: %w", img.ID, err)
	}
	s.o.Bus.Publish(eventsv1.SubjectImageRemoved, imageEvent(spec, img.ID, "removed", ""))
	return &runtimeapi.RemoveImageResponse{}, nil
}

// matchedName is the stored name spec refers to, "" when spec is an id.
func (s *Service) matchedName(img *storage.Image, spec string) string {
	if fullID.MatchString(spec) || strings.HasPrefix(img.ID, spec) {
		return ""
	}
	named, err := reference.ParseNormalizedNamed(spec)
	if err != nil {
		return ""
	}
	named = reference.TagNameOnly(named)
	for _, n := range img.Names {
		if n == named.String() {
			return n
		}
	}
	// A short name resolved through the search registries.
	for _, n := range img.Names {
		if r, err := reference.ParseNormalizedNamed(n); err == nil && strings.HasSuffix(r.String(), "/"+strings.TrimPrefix(named.String(), "docker.io/library/")) {
			return n
		}
	}
	return ""
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
