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

// Run serves netd until ctx ends.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	b, err := bus.Connect(cfg.NATSURL, "netd")
	if err != nil {
		return err
	}
	defer b.Close()
	svc, err := New(cfg, b, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	// A second netd fails before its reconcile could touch the first one's
	// pods: on the same root at New (bbolt's lock on the records, after
	// 5 s), on the same socket here.
	srv, err := daemon.NewServer(cfg.Socket, 0o600, flog.ServerOptions(log)...)
	if err != nil {
		return err
	}
	svc.Reconcile(flog.WithLogger(ctx, log))
	svc.network()
	netv1.RegisterNetServiceServer(srv.GRPC, svc)
	b.Publish(eventsv1.SubjectNetdStarted, &eventsv1.Envelope{Payload: &eventsv1.Envelope_Daemon{
		Daemon: &eventsv1.DaemonEvent{Name: "netd", Version: version.Version, Pid: int32(os.Getpid()), Socket: cfg.Socket}}})
	log.Info("serving", flog.KeySocket, cfg.Socket)
	return srv.Serve(ctx)
}
