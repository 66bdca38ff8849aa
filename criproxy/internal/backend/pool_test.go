package backend

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"flotilla.dev/lib/daemon"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// await polls cond (what criproxy's routing reads) until it holds.
func await(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// serveDaemon runs a daemon server (health service included) on sock until
// the returned stop is called; stop returns how long the graceful stop took.
func serveDaemon(t *testing.T, sock string) (*daemon.Server, func() time.Duration) {
	t.Helper()
	s, err := daemon.NewServer(sock, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx); close(done) }()
	var once sync.Once
	var took time.Duration
	stop := func() time.Duration {
		once.Do(func() { start := time.Now(); cancel(); <-done; took = time.Since(start) })
		return took
	}
	t.Cleanup(func() { stop() })
	return s, stop
}

// watched dials a one-replica pool on sock, runs its Watch (retrying every
// 50 ms) until the test ends, and waits for the replica to be healthy.
func watched(t *testing.T, sock string) *Replica {
	t.Helper()
	p, err := Dial("sandboxd", []string{sock}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Watch(ctx, 50*time.Millisecond); close(done) }()
	t.Cleanup(func() { cancel(); <-done; p.Close() })
	r := p.Replicas()[0]
	await(t, "healthy at start", 2*time.Second, r.Healthy)
	return r
}

func TestWatchFollowsReplicaHealth(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "sandboxd.sock")
	srv, stop := serveDaemon(t, sock)
	r := watched(t, sock)

	// A status change reaches criproxy without polling.
	srv.Health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	await(t, "unhealthy when not serving", 2*time.Second, func() bool { return !r.Healthy() })
	if !strings.Contains(r.LastError(), "NOT_SERVING") {
		t.Errorf("last error %q, want it to say NOT_SERVING", r.LastError())
	}
	srv.Health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	await(t, "healthy again", 2*time.Second, r.Healthy)

	// A stopping daemon is not held up by criproxy's open Watch stream:
	// its health turns NOT_SERVING first, and criproxy closes the stream.
	if took := stop(); took >= 4*time.Second {
		t.Errorf("graceful stop took %v: it waited for the Watch stream", took)
	}
	await(t, "unhealthy when stopped", 2*time.Second, func() bool { return !r.Healthy() })

	// Restarted on the same socket: watched again.
	serveDaemon(t, sock)
	await(t, "healthy after restart", 5*time.Second, r.Healthy)
	if r.LastError() != "" {
		t.Errorf("last error %q after recovery", r.LastError())
	}
}

// freezer relays a unix socket to another until frozen, then holds both
// connections open and passes nothing: a daemon that hangs.
type freezer struct {
	mu     sync.Mutex
	frozen bool
	conns  []net.Conn
}

func (f *freezer) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		f.mu.Lock()
		frozen := f.frozen
		f.mu.Unlock()
		if frozen {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (f *freezer) serve(t *testing.T, lis net.Listener, target string) {
	for {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("unix", target)
		if err != nil {
			c.Close()
			continue
		}
		f.mu.Lock()
		f.conns = append(f.conns, c, b)
		f.mu.Unlock()
		go f.copy(b, c)
		go f.copy(c, b)
	}
}

func (f *freezer) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		c.Close()
	}
}

func TestWatchNoticesAHungReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for a keepalive ping to go unanswered (≈ 15 s)")
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "real.sock")
	serveDaemon(t, real)
	front := filepath.Join(dir, "sandboxd.sock")
	lis, err := net.Listen("unix", front)
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{}
	go f.serve(t, lis, real)
	t.Cleanup(func() { lis.Close(); f.close() })

	r := watched(t, front)
	time.Sleep(100 * time.Millisecond)
	if !r.Healthy() {
		t.Fatalf("unhealthy before the hang: %s", r.LastError())
	}
	f.mu.Lock()
	f.frozen = true
	f.mu.Unlock()
	await(t, "unhealthy once the replica stops answering", keepaliveTime+keepaliveTimeout+5*time.Second,
		func() bool { return !r.Healthy() })
}
