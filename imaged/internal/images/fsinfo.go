package images

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ImageFsInfo implements runtime.v1.ImageService: bytes and inodes used by
// the store. Images and container layers share one store, so the container
// filesystem is the image filesystem (as CRI-O reports it; a different one
// would tell the kubelet the disk is split).
func (s *Service) ImageFsInfo(ctx context.Context, _ *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	fs, err := usage(ctx, s.o.Store.GraphRoot(), time.Now().UnixNano())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ImageFsInfoResponse{
		ImageFilesystems:     []*runtimeapi.FilesystemUsage{fs},
		ContainerFilesystems: []*runtimeapi.FilesystemUsage{fs},
	}, nil
}

// usage walks dir counting allocated bytes and distinct inodes; it does not
// descend into mounts (mounted container layers would count twice).
func usage(ctx context.Context, dir string, now int64) (*runtimeapi.FilesystemUsage, error) {
	var root syscall.Stat_t
	if err := syscall.Stat(dir, &root); err != nil {
		return nil, fmt.Errorf("stat %s: %w", dir, err)
	}
	seen := map[uint64]bool{}
	var bytes, inodes uint64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished while walking
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if st.Dev != root.Dev {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if seen[st.Ino] {
			return nil
		}
		seen[st.Ino] = true
		inodes++
		bytes += uint64(st.Blocks) * 512
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("usage of %s: %w", dir, err)
	}
	return &runtimeapi.FilesystemUsage{
		Timestamp:  now,
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: dir},
		UsedBytes:  &runtimeapi.UInt64Value{Value: bytes},
		InodesUsed: &runtimeapi.UInt64Value{Value: inodes},
	}, nil
}
