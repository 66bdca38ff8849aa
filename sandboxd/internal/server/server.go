// Package server runs sandboxd: runtime.v1.RuntimeService (less what
// criproxy answers itself).
package server

import (
	"context"
	"log/slog"
	"os"

	"flotilla.dev/lib/bus"
	"flotilla.dev/lib/daemon"
	flog "flotilla.dev/lib/log"
	"flotilla.dev/lib/version"
	eventsv1 "flotilla.dev/proto/events/v1"
	"flotilla.dev/sandboxd/internal/config"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Runtime implements the CRI RuntimeService.
type Runtime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
}

// Version answers for the runtime.
func (r *Runtime) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "flotilla", RuntimeVersion: version.Version, RuntimeApiVersion: version.CRIVersion}, nil
}

// Status reports RuntimeReady.
func (r *Runtime) Status(context.Context, *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true},
	}}}, nil
}

// Run serves sandboxd until ctx ends.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	b, err := bus.Connect(cfg.NATSURL, "sandboxd")
	if err != nil {
		return err
	}
	defer b.Close()
	srv, err := daemon.NewServer(cfg.Socket, 0o600, flog.ServerOptions(log)...)
	if err != nil {
		return err
	}
	runtimeapi.RegisterRuntimeServiceServer(srv.GRPC, &Runtime{})
	b.Publish(eventsv1.SubjectSandboxdStarted, &eventsv1.Envelope{Payload: &eventsv1.Envelope_Daemon{
		Daemon: &eventsv1.DaemonEvent{Name: "sandboxd", Version: version.Version, Pid: int32(os.Getpid()), Socket: cfg.Socket}}})
	log.Info("serving", flog.KeySocket, cfg.Socket)
	return srv.Serve(ctx)
}
