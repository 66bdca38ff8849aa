// Package rootfs implements image.v1 RootfsService: container layers on
// images in imaged's store, for sandboxd.
package rootfs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"flotilla.dev/imaged/internal/images"
	"flotilla.dev/lib/ids"
	imagev1 "flotilla.dev/proto/image/v1"
	"github.com/containerd/errdefs"
	"go.podman.io/storage"
)

// Service implements image.v1 RootfsService.
type Service struct {
	imagev1.UnimplementedRootfsServiceServer
	store  storage.Store
	images *images.Service
	mu     sync.Mutex // serializes mount/unmount decisions
}

// New returns a Service on the store, resolving images through imgs.
func New(store storage.Store, imgs *images.Service) *Service {
	return &Service{store: store, images: imgs}
}

type metadata struct {
	PodID string `json:"pod_id"`
	Name  string `json:"name"`
}

func checkID(id string) error {
	if !ids.Name(id, 128) {
		return fmt.Errorf("container id %q is not valid: %w", id, errdefs.ErrInvalidArgument)
	}
	return nil
}

// CreateRootfs creates the container layer; idempotent for the same image.
// With req.Mount it also mounts it (as MountRootfs), and a fresh layer
// whose mount fails is deleted again.
//
// Container layers are volatile: the store is a c/storage transient store,
// so their records (volatile-containers.json, volatile-layers.json) live in
// the run root and are written without fsync; images stay in the graph root.
// A restart of imaged finds every layer (ListRootfs, for sandboxd to
// reconcile). A reboot (the run root is a tmpfs on a node) loses the
// records; imaged's start-up collection (storage GarbageCollect) removes the
// layers' directories, and sandboxd finds its containers' rootfs missing and
// treats them as lost, as CRI-O with a transient store does: a Kubernetes
// node recreates containers after a reboot and never reuses their writable
// layers. For the same reason overlays are mounted "volatile": a container's
// syncs of its layer are not written through, and an unmount does not sync
// the whole file system under it.
func (s *Service) CreateRootfs(ctx context.Context, req *imagev1.CreateRootfsRequest) (*imagev1.CreateRootfsResponse, error) {
	if err := checkID(req.GetContainerId()); err != nil {
		return nil, err
	}
	img, err := s.images.Lookup(req.GetImage())
	if err != nil {
		return nil, fmt.Errorf("create rootfs %s: %w", req.GetContainerId(), err)
	}
	if c, err := s.store.Container(req.GetContainerId()); err == nil {
		if c.ImageID != img.ID {
			return nil, fmt.Errorf("container %s already has a rootfs on image %s: %w", c.ID, c.ImageID, errdefs.ErrAlreadyExists)
		}
		mountPoint := ""
		if req.GetMount() {
			if mountPoint, err = s.mount(c.ID, true); err != nil {
				return nil, err
			}
		}
		return s.response(c, img, mountPoint, mountPoint == "")
	}
	md, _ := json.Marshal(metadata{PodID: req.GetPodId(), Name: req.GetName()})
	release := s.images.HoldLayers()
	c, err := s.store.CreateContainer(req.GetContainerId(), nil, img.ID, "", string(md), &storage.ContainerOptions{Volatile: true})
	release()
	if err != nil {
		if errors.Is(err, storage.ErrDuplicateID) {
			return nil, fmt.Errorf("create rootfs %s: %v: %w", req.GetContainerId(), err, errdefs.ErrAlreadyExists)
		}
		return nil, fmt.Errorf("create rootfs %s: %w", req.GetContainerId(), err)
	}
	mountPoint := ""
	if req.GetMount() {
		// A fresh layer is not mounted: no need to ask.
		if mountPoint, err = s.mount(c.ID, false); err != nil {
			if derr := s.store.DeleteContainer(c.ID); derr != nil {
				err = fmt.Errorf("%w (and deleting the new layer: %v)", err, derr)
			}
			return nil, err
		}
	}
	return s.response(c, img, mountPoint, false)
}

// response describes c: mountPoint is where it was just mounted, askMount
// asks the store instead.
func (s *Service) response(c *storage.Container, img *storage.Image, mountPoint string, askMount bool) (*imagev1.CreateRootfsResponse, error) {
	info, err := s.images.Info(img)
	if err != nil {
		return nil, err
	}
	r := s.toProto(c, askMount)
	if mountPoint != "" {
		r.MountPoint = mountPoint
	}
	return &imagev1.CreateRootfsResponse{Rootfs: r, Image: info}, nil
}

func (s *Service) toProto(c *storage.Container, askMount bool) *imagev1.Rootfs {
	var md metadata
	_ = json.Unmarshal([]byte(c.Metadata), &md)
	r := &imagev1.Rootfs{ContainerId: c.ID, LayerId: c.LayerID, ImageId: c.ImageID, PodId: md.PodID, Name: md.Name}
	if !askMount {
		return r
	}
	if mounted, err := s.store.Mounted(c.ID); err == nil && mounted > 0 {
		if l, err := s.store.Layer(c.LayerID); err == nil {
			r.MountPoint = l.MountPoint
		}
	}
	return r
}

// MountRootfs mounts the layer and returns its path. Mounting a mounted
// layer returns the same path without counting a second mount, so one
// UnmountRootfs always unmounts (sandboxd may repeat a mount after a restart).
func (s *Service) MountRootfs(ctx context.Context, req *imagev1.MountRootfsRequest) (*imagev1.MountRootfsResponse, error) {
	if err := checkID(req.GetContainerId()); err != nil {
		return nil, err
	}
	p, err := s.mount(req.GetContainerId(), true)
	if err != nil {
		return nil, err
	}
	return &imagev1.MountRootfsResponse{MountPoint: p}, nil
}

// mount mounts the container's layer once; ifMounted first returns the
// mount point of a mounted one without counting a second mount.
func (s *Service) mount(id string, ifMounted bool) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ifMounted {
		if c, err := s.store.Container(id); err == nil {
			if n, err := s.store.Mounted(c.ID); err == nil && n > 0 {
				if l, err := s.store.Layer(c.LayerID); err == nil && l.MountPoint != "" {
					return l.MountPoint, nil
				}
			}
		}
	}
	p, err := s.store.Mount(id, "")
	if err != nil {
		if errors.Is(err, storage.ErrContainerUnknown) || errors.Is(err, storage.ErrLayerUnknown) {
			return "", fmt.Errorf("rootfs %s: %w", id, errdefs.ErrNotFound)
		}
		return "", fmt.Errorf("mount rootfs %s: %w", id, err)
	}
	return p, nil
}

// UnmountRootfs unmounts; an unmounted or missing layer succeeds.
func (s *Service) UnmountRootfs(ctx context.Context, req *imagev1.UnmountRootfsRequest) (*imagev1.UnmountRootfsResponse, error) {
	if err := checkID(req.GetContainerId()); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.unmount(req.GetContainerId(), req.GetForce()); err != nil {
		return nil, err
	}
	return &imagev1.UnmountRootfsResponse{}, nil
}

func (s *Service) unmount(id string, force bool) error {
	if n, err := s.store.Mounted(id); err != nil || n == 0 {
		return nil
	}
	if _, err := s.store.Unmount(id, force); err != nil {
		if errors.Is(err, storage.ErrContainerUnknown) || errors.Is(err, storage.ErrLayerUnknown) || errors.Is(err, storage.ErrLayerNotMounted) {
			return nil
		}
		return fmt.Errorf("unmount rootfs %s: %w", id, err)
	}
	return nil
}

// RemoveRootfs unmounts and deletes the layer; a missing layer succeeds.
func (s *Service) RemoveRootfs(ctx context.Context, req *imagev1.RemoveRootfsRequest) (*imagev1.RemoveRootfsResponse, error) {
	id := req.GetContainerId()
	if err := checkID(id); err != nil {
		return nil, err
	}
	if _, err := s.store.Container(id); err != nil {
		return &imagev1.RemoveRootfsResponse{}, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.unmount(id, true); err != nil {
		return nil, err
	}
	if err := s.store.DeleteContainer(id); err != nil && !errors.Is(err, storage.ErrContainerUnknown) {
		return nil, fmt.Errorf("remove rootfs %s: %w", id, err)
	}
	return &imagev1.RemoveRootfsResponse{}, nil
}

// ListRootfs lists every container layer.
func (s *Service) ListRootfs(ctx context.Context, _ *imagev1.ListRootfsRequest) (*imagev1.ListRootfsResponse, error) {
	cs, err := s.store.Containers()
	if err != nil {
		return nil, fmt.Errorf("list rootfs: %w", err)
	}
	out := &imagev1.ListRootfsResponse{}
	for i := range cs {
		out.Rootfs = append(out.Rootfs, s.toProto(&cs[i], true))
	}
	return out, nil
}

// RootfsUsage reports the bytes and inodes in each container layer's
// writable part (the overlay upper directory), through the storage driver.
func (s *Service) RootfsUsage(ctx context.Context, req *imagev1.RootfsUsageRequest) (*imagev1.RootfsUsageResponse, error) {
	for _, id := range req.GetContainerIds() {
		if err := checkID(id); err != nil {
			return nil, err
		}
	}
	driver, err := s.store.GraphDriver()
	if err != nil {
		return nil, fmt.Errorf("rootfs usage: %w", err)
	}
	out := &imagev1.RootfsUsageResponse{Mountpoint: s.store.GraphRoot()}
	for _, id := range req.GetContainerIds() {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		c, err := s.store.Container(id)
		if err != nil {
			continue // not ours (any more)
		}
		u, err := driver.ReadWriteDiskUsage(c.LayerID)
		if err != nil {
			continue // removed meanwhile
		}
		out.Usage = append(out.Usage, &imagev1.RootfsUsage{ContainerId: id,
			UsedBytes: uint64(max(u.Size, 0)), InodesUsed: uint64(max(u.InodeCount, 0))})
	}
	return out, nil
}
