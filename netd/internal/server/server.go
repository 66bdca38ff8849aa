// Package server runs netd: the net.v1 service on its socket.
package server

import (
	"context"
	"log/slog"
	"os"

	"flotilla.dev/lib/bus"
	"flotilla.dev/lib/daemon"
	flog "flotilla.dev/lib/log"
	"flotilla.dev/lib/version"
	"flotilla.dev/netd/internal/config"
	eventsv1 "flotilla.dev/proto/events/v1"
	netv1 "flotilla.dev/proto/net/v1"
)

// Service implements net.v1.
type Service struct {
	netv1.UnimplementedNetServiceServer
	cfg *config.Config
	bus bus.Bus
}

// Status reports network readiness.
func (s *Service) Status(ctx context.Context, _ *netv1.StatusRequest) (*netv1.StatusResponse, error) {
	return &netv1.StatusResponse{Ready: false, Reason: "NetworkPluginNotReady", Message: "netd: CNI is not implemented yet"}, nil
}

// Run serves netd until ctx ends.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	b, err := bus.Connect(cfg.NATSURL, "netd")
	if err != nil {
		return err
	}
	defer b.Close()
	srv, err := daemon.NewServer(cfg.Socket, 0o600, flog.ServerOptions(log)...)
	if err != nil {
		return err
	}
	netv1.RegisterNetServiceServer(srv.GRPC, &Service{cfg: cfg, bus: b})
	b.Publish(eventsv1.SubjectNetdStarted, &eventsv1.Envelope{Payload: &eventsv1.Envelope_Daemon{
		Daemon: &eventsv1.DaemonEvent{Name: "netd", Version: version.Version, Pid: int32(os.Getpid()), Socket: cfg.Socket}}})
	log.Info("serving", flog.KeySocket, cfg.Socket)
	return srv.Serve(ctx)
}
