package daemon

import (
	"context"
	"log/slog"
	"net"
	"os"
	"time"

	daemonv1 "flotilla.dev/proto/daemon/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

// Server is a gRPC server on a unix socket with the health service
// registered (criproxy watches backends' health with it).
type Server struct {
	GRPC   *grpc.Server
	Health *health.Server
	Socket string
	lis    net.Listener
}

// NewServer listens on socket (mode 0600 unless given) and builds a gRPC
// server with opts. It accepts keepalive pings every 5 s (gRPC's default
// policy closes a connection pinged more often than every 5 minutes):
// criproxy pings an otherwise quiet connection every 10 s to notice a
// daemon that hangs.
func NewServer(socket string, mode os.FileMode, opts ...grpc.ServerOption) (*Server, error) {
	if mode == 0 {
		mode = 0o600
	}
	lis, err := ListenUnix(socket, mode)
	if err != nil {
		return nil, err
	}
	opts = append([]grpc.ServerOption{grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second})}, opts...)
	s := grpc.NewServer(opts...)
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	daemonv1.RegisterDaemonServiceServer(s, &infoServer{socket: socket})
	return &Server{GRPC: s, Health: h, Socket: socket, lis: lis}, nil
}

// Serve serves until ctx is cancelled, then stops gracefully (bounded by
// 5 s) and removes the socket.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.GRPC.Serve(s.lis) }()
	_ = NotifyReady()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	_ = NotifyStopping()
	s.Health.Shutdown()
	stopped := make(chan struct{})
	go func() { s.GRPC.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		slog.Warn("graceful stop timed out, stopping now")
		s.GRPC.Stop()
	}
	_ = os.Remove(s.Socket)
	return nil
}
