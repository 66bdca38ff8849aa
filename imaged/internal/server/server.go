// Package server runs imaged: runtime.v1.ImageService and image.v1 Rootfs.
package server

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"flotilla.dev/imaged/internal/config"
	"flotilla.dev/imaged/internal/images"
	"flotilla.dev/imaged/internal/rootfs"
	"flotilla.dev/imaged/internal/store"
	"flotilla.dev/lib/bus"
	"flotilla.dev/lib/daemon"
	flog "flotilla.dev/lib/log"
	"flotilla.dev/lib/version"
	eventsv1 "flotilla.dev/proto/events/v1"
	imagev1 "flotilla.dev/proto/image/v1"
	"go.podman.io/storage"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Run serves imaged until ctx ends.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	b, err := bus.Connect(cfg.NATSURL, "imaged")
	if err != nil {
		return err
	}
	defer b.Close()
	return Serve(ctx, cfg, log, b)
}

// Serve serves imaged on cfg.Socket with events on b until ctx ends.
func Serve(ctx context.Context, cfg *config.Config, log *slog.Logger, b bus.Bus) error {
	if err := store.PrepareDirs(cfg); err != nil {
		return err
	}
	st, err := store.Open(cfg)
	if err != nil {
		return err
	}
	defer func() {
		// Mounted container layers stay mounted: their containers keep
		// running while imaged restarts.
		if _, err := st.Shutdown(false); errors.Is(err, storage.ErrLayerUsedByContainer) {
			log.Info("storage left with mounted container layers")
		} else if err != nil {
			log.Warn("shut down storage", flog.KeyError, err)
		}
	}()
	if cfg.StorageDriver == "overlay" {
		if err := store.SpreadLayerDirs(cfg.Root); err != nil {
			log.Warn("mark layer directories for spreading over the file system", flog.KeyError, err)
		}
	}
	// Layers of pulls interrupted by a crash belong to no image: drop them.
	if n, err := store.GC(st); err != nil {
		log.Warn("collect unreferenced layers", flog.KeyError, err)
	} else if n > 0 {
		log.Info("removed unreferenced layers", "layers", n)
	}
	// Directories without records: what a machine crash can leave of a
	// container layer, whose records are written without fsync.
	if err := st.GarbageCollect(); err != nil {
		log.Warn("collect unrecorded storage directories", flog.KeyError, err)
	}
	imgs := images.New(images.Options{
		Store:                st,
		System:               store.SystemContext(cfg),
		PolicyPath:           cfg.SignaturePolicy,
		Bus:                  b,
		Log:                  log,
		ProgressTimeout:      time.Duration(cfg.PullProgressTimeout),
		MaxParallelDownloads: cfg.MaxParallelDownloads,
	})
	srv, err := daemon.NewServer(cfg.Socket, 0o600, flog.ServerOptions(log)...)
	if err != nil {
		return err
	}
	runtimeapi.RegisterImageServiceServer(srv.GRPC, imgs)
	imagev1.RegisterRootfsServiceServer(srv.GRPC, rootfs.New(st, imgs))
	b.Publish(eventsv1.SubjectImagedStarted, &eventsv1.Envelope{Payload: &eventsv1.Envelope_Daemon{
		Daemon: &eventsv1.DaemonEvent{Name: "imaged", Version: version.Version, Pid: int32(os.Getpid()), Socket: cfg.Socket}}})
	log.Info("serving", flog.KeySocket, cfg.Socket)
	return srv.Serve(ctx)
}
