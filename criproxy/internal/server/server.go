// Package server runs criproxy: the CRI socket, the backend pools and the
// embedded NATS server.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"flotilla.dev/criproxy/internal/backend"
	"flotilla.dev/criproxy/internal/config"
	"flotilla.dev/criproxy/internal/proxy"
	"flotilla.dev/lib/bus"
	"flotilla.dev/lib/daemon"
	flog "flotilla.dev/lib/log"
	"flotilla.dev/lib/version"
	eventsv1 "flotilla.dev/proto/events/v1"
	"google.golang.org/grpc"
)

// Run serves criproxy until ctx ends.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	natsURL := cfg.NATSURL
	if cfg.NATSEmbedded {
		srv, err := bus.StartEmbedded(cfg.NATSListen)
		if err != nil {
			return fmt.Errorf("embedded nats: %w", err)
		}
		defer srv.Shutdown()
		log.Info("embedded nats serving", "url", srv.ClientURL())
	}
	b, err := bus.Connect(natsURL, "criproxy")
	if err != nil {
		return err
	}
	defer b.Close()

	pools := map[string]*backend.Pool{}
	for name, socks := range map[string][]string{"imaged": cfg.Imaged, "sandboxd": cfg.Sandboxd, "netd": cfg.Netd} {
		p, err := backend.Dial(name, socks, log)
		if err != nil {
			return err
		}
		defer p.Close()
		pools[name] = p
		go p.Watch(ctx, cfg.HealthInterval.Duration)
	}
	px := &proxy.Proxy{
		Imaged: pools["imaged"], Sandboxd: pools["sandboxd"], Netd: pools["netd"],
		Bus: b, StatusTimeout: cfg.StatusTimeout.Duration, Log: log,
		Info: map[string]string{"nats": natsURL},
	}
	lis, err := daemon.ListenUnix(cfg.Socket, os.FileMode(cfg.SocketMode))
	if err != nil {
		return err
	}
	opts := append(px.ServerOptions(),
		grpc.ChainUnaryInterceptor(flog.UnaryServerInterceptor(log)),
		grpc.ChainStreamInterceptor(flog.StreamServerInterceptor(log)))
	gs := grpc.NewServer(opts...)
	errc := make(chan error, 1)
	go func() { errc <- gs.Serve(lis) }()
	b.Publish(eventsv1.SubjectCriproxyStarted, &eventsv1.Envelope{Payload: &eventsv1.Envelope_Daemon{
		Daemon: &eventsv1.DaemonEvent{Name: "criproxy", Version: version.Version, Pid: int32(os.Getpid()), Socket: cfg.Socket}}})
	_ = daemon.NotifyReady()
	log.Info("serving", flog.KeySocket, cfg.Socket)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	_ = daemon.NotifyStopping()
	gs.Stop() // streams such as GetContainerEvents never end by themselves
	_ = os.Remove(cfg.Socket)
	return nil
}
