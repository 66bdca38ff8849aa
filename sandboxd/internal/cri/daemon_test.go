package cri

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"flotilla.dev/lib/bus"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// runDaemon starts a daemon binary (imaged, netd) with config, its TOML
// table, written into dir, and connects to sock. When the test ends it stops
// the daemon (SIGTERM), then nats, then runs after (if not nil).
func runDaemon(t *testing.T, bin, dir, config, sock string, nats *bus.Embedded, after func()) *grpc.ClientConn {
	t.Helper()
	cfg := filepath.Join(dir, "flotilla.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cmd.Process.Signal(unix.SIGTERM)
		cmd.Wait()
		nats.Shutdown()
		if after != nil {
			after()
		}
	})
	return conn
}
