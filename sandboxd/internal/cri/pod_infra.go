package cri

import (
	"context"
	"fmt"

	"flotilla.dev/sandboxd/internal/store"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// startInfra runs the pause image as the pod's init when its containers
// share one PID namespace (called with the pod not yet visible to clients).
func (s *Service) startInfra(ctx context.Context, p *sandbox) error {
	if err := s.ensureImage(ctx, s.Config.PauseImage); err != nil {
		return err
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "POD"},
		Image:    &runtimeapi.ImageSpec{Image: s.Config.PauseImage},
		Linux: &runtimeapi.LinuxContainerConfig{
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
				NoNewPrivs:       true,
			},
			Resources: &runtimeapi.LinuxContainerResources{CpuShares: 2},
		},
	}
	c, err := s.createContainer(ctx, p, cfg, true)
	if err != nil {
		return err
	}
	if err := s.savePod(p, func(r *store.Pod) { r.InfraID = c.id }); err != nil {
		_ = s.removeContainer(ctx, c)
		return err
	}
	if err := s.startContainer(ctx, c); err != nil {
		_ = s.removeContainer(ctx, c)
		return err
	}
	return nil
}

// ensureImage pulls image through imaged when it is not there yet.
func (s *Service) ensureImage(ctx context.Context, image string) error {
	if s.Images == nil {
		return nil
	}
	spec := &runtimeapi.ImageSpec{Image: image}
	st, err := s.Images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec})
	if err == nil && st.GetImage() != nil {
		return nil
	}
	if _, err := s.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec}); err != nil {
		return fmt.Errorf("pull %s: %w", image, err)
	}
	return nil
}
