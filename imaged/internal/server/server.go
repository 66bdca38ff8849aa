// Package server runs imaged: runtime.v1.ImageService and image.v1 Rootfs.
package server

import (
	"context"
	"log/slog"
	"os"

	"flotilla.dev/imaged/internal/config"
	"flotilla.dev/lib/bus"
	"flotilla.dev/lib/daemon"
	flog "flotilla.dev/lib/log"
	"flotilla.dev/lib/version"
	eventsv1 "flotilla.dev/proto/events/v1"
	imagev1 "flotilla.dev/proto/image/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Images implements the CRI ImageService.
type Images struct {
	runtimeapi.UnimplementedImageServiceServer
}

// Rootfs implements image.v1 Rootfs.
type Rootfs struct {
	imagev1.UnimplementedRootfsServiceServer
}

// Run serves imaged until ctx ends.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	b, err := bus.Connect(cfg.NATSURL, "imaged")
	if err != nil {
		return err
	}
	defer b.Close()
	srv, err := daemon.NewServer(cfg.Socket, 0o600, flog.ServerOptions(log)...)
	if err != nil {
		return err
	}
	runtimeapi.RegisterImageServiceServer(srv.GRPC, &Images{})
	imagev1.RegisterRootfsServiceServer(srv.GRPC, &Rootfs{})
	b.Publish(eventsv1.SubjectImagedStarted, &eventsv1.Envelope{Payload: &eventsv1.Envelope_Daemon{
		Daemon: &eventsv1.DaemonEvent{Name: "imaged", Version: version.Version, Pid: int32(os.Getpid()), Socket: cfg.Socket}}})
	log.Info("serving", flog.KeySocket, cfg.Socket)
	return srv.Serve(ctx)
}
