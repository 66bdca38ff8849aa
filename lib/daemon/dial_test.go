package daemon

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// A daemon that starts after its client dialled (and failed) is used as
// soon as it serves, not after a long reconnect backoff.
func TestDialUnixWaitsForLateDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "late.sock")
	conn, err := DialUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	cancel()
	if err == nil {
		t.Fatal("call to a missing daemon succeeded")
	}
	srv, err := NewServer(sock, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(context.Background())
	defer stop()
	go srv.Serve(sctx) //nolint:errcheck
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("call after the daemon came up: %v", err)
	}
}
