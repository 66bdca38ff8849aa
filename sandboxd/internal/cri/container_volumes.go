package cri

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	flog "flotilla.dev/lib/log"
	imagev1 "flotilla.dev/proto/image/v1"
	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Image volumes (Kubernetes' ImageVolume, KEP-4639): a CRI mount with an
// image mounts that image's file system read-only at container_path, or only
// its image_sub_path. Each is a container layer of imaged on the image, as a
// container's rootfs is, with the id volumeRootfsID(container, index of the
// mount): imaged's records and sandboxd's reconciliation own it as they own
// the rootfs, and removing the container removes it. The container sees it
// through a read-only bind mount, so the layer's (empty) upper directory is
// never written; binaries in it can run (no noexec).

// volumeRootfsID is the id of the layer of the image volume at index i of a
// container's mounts.
func volumeRootfsID(ctrID string, i int) string {
	return ctrID + "-v" + strconv.Itoa(i)
}

// volumeOwner returns the container whose image volume layer id is, or ""
// when id is not an image volume's.
func volumeOwner(id string) string {
	i := strings.LastIndex(id, "-v")
	if i <= 0 {
		return ""
	}
	if n, err := strconv.Atoi(id[i+2:]); err != nil || n < 0 || strconv.Itoa(n) != id[i+2:] {
		return ""
	}
	return id[:i]
}

// checkImageVolumes refuses image volumes the runtime must not mount: a
// writable one (the CRI says image volumes are read-only), one that also
// names a host path, and a sub-path that is absolute or leaves the image.
func checkImageVolumes(mounts []*runtimeapi.Mount) error {
	for _, m := range mounts {
		if m.GetImage().GetImage() == "" {
			if m.GetImageSubPath() != "" {
				return fmt.Errorf("mount %q: image_sub_path without an image: %w", m.GetContainerPath(), errdefs.ErrInvalidArgument)
			}
			continue
		}
		dst := m.GetContainerPath()
		switch sub := m.GetImageSubPath(); {
		case !m.GetReadonly():
			return fmt.Errorf("image volume %q of %s must be read-only: %w", dst, m.GetImage().GetImage(), errdefs.ErrInvalidArgument)
		case m.GetHostPath() != "":
			return fmt.Errorf("image volume %q has a host_path too (%q): %w", dst, m.GetHostPath(), errdefs.ErrInvalidArgument)
		case !path.IsAbs(dst):
			return fmt.Errorf("image volume container_path %q is not absolute: %w", dst, errdefs.ErrInvalidArgument)
		case path.IsAbs(sub) || slices.Contains(strings.Split(sub, "/"), ".."):
			return fmt.Errorf("image volume %q: image_sub_path %q must be relative and stay in the image: %w", dst, sub, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// imageVolumeIndexes returns the indexes of the image volumes in mounts.
func imageVolumeIndexes(mounts []*runtimeapi.Mount) []int {
	var idx []int
	for i, m := range mounts {
		if m.GetImage().GetImage() != "" {
			idx = append(idx, i)
		}
	}
	return idx
}

// mountImageVolumes creates and mounts the image volumes of cfg (checked by
// checkImageVolumes). It returns the configuration to build the spec from,
// each image volume turned into a read-only bind mount of its path, and the
// one to keep, each image volume's image carrying the image id in image_ref
// (ContainerStatus reports it). Without image volumes both are cfg. Layers
// made before a failure are in *cleanups.
func (s *Service) mountImageVolumes(ctx context.Context, ctrID, podID string, cfg *runtimeapi.ContainerConfig, log *slog.Logger, cleanups *[]func()) (forSpec, kept *runtimeapi.ContainerConfig, err error) {
	idx := imageVolumeIndexes(cfg.GetMounts())
	if len(idx) == 0 {
		return cfg, cfg, nil
	}
	forSpec = proto.Clone(cfg).(*runtimeapi.ContainerConfig)
	kept = proto.Clone(cfg).(*runtimeapi.ContainerConfig)
	for _, i := range idx {
		m := cfg.GetMounts()[i]
		id := volumeRootfsID(ctrID, i)
		created, root, err := s.createMountedLayer(ctx, &imagev1.CreateRootfsRequest{ContainerId: id, Image: m.GetImage().GetImage(),
			PodId: podID, Name: "image volume " + m.GetContainerPath() + " of " + cfg.GetMetadata().GetName()}, log, cleanups)
		if err != nil {
			return nil, nil, fmt.Errorf("image volume %q from image %q: %w", m.GetContainerPath(), m.GetImage().GetImage(), err)
		}
		src := root
		if sub := m.GetImageSubPath(); sub != "" {
			// Symbolic links in the image resolve inside it, never to the host.
			if src, err = securejoin.SecureJoin(root, sub); err != nil {
				return nil, nil, fmt.Errorf("image volume %q: image_sub_path %q: %w", m.GetContainerPath(), sub, err)
			}
			if _, err := os.Stat(src); err != nil {
				return nil, nil, fmt.Errorf("image volume %q: image_sub_path %q is not in image %s: %w",
					m.GetContainerPath(), sub, m.GetImage().GetImage(), errdefs.ErrInvalidArgument)
			}
		}
		forSpec.Mounts[i] = &runtimeapi.Mount{ContainerPath: m.GetContainerPath(), HostPath: filepath.Clean(src), Readonly: true,
			Propagation: runtimeapi.MountPropagation_PROPAGATION_PRIVATE, MountOptions: m.GetMountOptions(), RecursiveReadOnly: m.GetRecursiveReadOnly()}
		kept.Mounts[i].Image.ImageRef = imageRef(created.GetImage())
	}
	return forSpec, kept, nil
}

// createMountedLayer creates and mounts a container layer of imaged (a
// container's rootfs or an image volume) in one call, puts its removal in
// *cleanups, and returns imaged's answer and the layer's mount point.
func (s *Service) createMountedLayer(ctx context.Context, req *imagev1.CreateRootfsRequest, log *slog.Logger, cleanups *[]func()) (*imagev1.CreateRootfsResponse, string, error) {
	req.Mount = true
	created, err := s.Rootfs.CreateRootfs(ctx, req)
	if err != nil {
		return nil, "", err
	}
	id := req.GetContainerId()
	*cleanups = append(*cleanups, func() {
		rctx, cancel := timeout(ctx, callTimeout)
		defer cancel()
		if _, err := s.Rootfs.RemoveRootfs(rctx, &imagev1.RemoveRootfsRequest{ContainerId: id}); err != nil {
			log.Warn("remove layer after failed create", "layer", id, flog.KeyError, err)
		}
	})
	mountPoint := created.GetRootfs().GetMountPoint()
	if mountPoint == "" { // an imaged that predates CreateRootfsRequest.mount
		mounted, err := s.Rootfs.MountRootfs(ctx, &imagev1.MountRootfsRequest{ContainerId: id})
		if err != nil {
			return nil, "", fmt.Errorf("mount: %w", err)
		}
		mountPoint = mounted.GetMountPoint()
	}
	return created, mountPoint, nil
}

// removeImageVolumes removes the layers of a container's image volumes;
// missing ones are fine.
func (s *Service) removeImageVolumes(ctx context.Context, ctrID string, mounts []*runtimeapi.Mount) error {
	if s.Rootfs == nil {
		return nil
	}
	for _, i := range imageVolumeIndexes(mounts) {
		if _, err := s.Rootfs.RemoveRootfs(ctx, &imagev1.RemoveRootfsRequest{ContainerId: volumeRootfsID(ctrID, i)}); err != nil {
			return fmt.Errorf("remove image volume %q: %w", mounts[i].GetContainerPath(), err)
		}
	}
	return nil
}
