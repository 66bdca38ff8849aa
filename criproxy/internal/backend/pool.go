// Package backend keeps connections to the replicas of one backend daemon,
// health-checks them and picks the one a call goes to.
package backend

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"flotilla.dev/lib/daemon"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Replica is one socket of a backend.
type Replica struct {
	Name    string // backend name: imaged, sandboxd, netd
	Socket  string
	Conn    *grpc.ClientConn
	healthy atomic.Bool
	lastErr atomic.Value // string
}

// Target names the replica in errors: "imaged (unix:///run/flotilla/imaged.sock)".
func (r *Replica) Target() string { return fmt.Sprintf("%s (unix://%s)", r.Name, r.Socket) }

// Healthy reports the last health check's result.
func (r *Replica) Healthy() bool { return r.healthy.Load() }

// LastError is the last health check's error, if any.
func (r *Replica) LastError() string {
	s, _ := r.lastErr.Load().(string)
	return s
}

// Pool is the replicas of one backend.
type Pool struct {
	Name     string
	replicas []*Replica
	next     atomic.Uint32
	log      *slog.Logger
}

// Dial opens (lazily) a connection to every replica. Reconnect backoff is
// capped at one second so a restarted daemon is picked up at once.
func Dial(name string, sockets []string, log *slog.Logger, opts ...grpc.DialOption) (*Pool, error) {
	p := &Pool{Name: name, log: log}
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)),
	}
	for _, s := range sockets {
		conn, err := grpc.NewClient("unix://"+s, append(base, opts...)...)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("%s replica %s: %w", name, s, err)
		}
		r := &Replica{Name: name, Socket: s, Conn: conn}
		r.healthy.Store(true) // optimistic until the first check
		p.replicas = append(p.replicas, r)
	}
	return p, nil
}

// Replicas returns every replica.
func (p *Pool) Replicas() []*Replica { return p.replicas }

// Candidates returns the replicas in the order a call should try them:
// healthy ones first, rotating between calls, then the unhealthy ones (a
// daemon restarted since the last check still gets the call).
func (p *Pool) Candidates() []*Replica {
	n := len(p.replicas)
	start := int(p.next.Add(1)) % n
	out := make([]*Replica, 0, n)
	var sick []*Replica
	for i := 0; i < n; i++ {
		r := p.replicas[(start+i)%n]
		if r.Healthy() {
			out = append(out, r)
		} else {
			sick = append(sick, r)
		}
	}
	return append(out, sick...)
}

// Check health-checks every replica once, each with the given timeout.
func (p *Pool) Check(ctx context.Context, timeout time.Duration) {
	var wg sync.WaitGroup
	for _, r := range p.replicas {
		wg.Add(1)
		go func(r *Replica) {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			resp, err := healthpb.NewHealthClient(r.Conn).Check(cctx, &healthpb.HealthCheckRequest{})
			ok := err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
			if !ok {
				msg := "not serving"
				if err != nil {
					msg = err.Error()
				}
				r.lastErr.Store(msg)
			} else {
				r.lastErr.Store("")
			}
			if was := r.healthy.Swap(ok); was != ok {
				p.log.Info("backend health changed", "backend", r.Name, "socket", r.Socket, "healthy", ok)
			}
		}(r)
	}
	wg.Wait()
}

// Watch health-checks every interval until ctx ends.
func (p *Pool) Watch(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		p.Check(ctx, interval)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close closes every connection.
func (p *Pool) Close() {
	for _, r := range p.replicas {
		r.Conn.Close()
	}
}

// Prepare makes sure a call to r goes out on a fresh connection attempt:
// a replica whose last attempt failed (e.g. it was restarting) is retried
// at once instead of failing with the stale error until its backoff ends.
// It waits at most maxWait, and returns as soon as the attempt succeeded or
// failed.
func (r *Replica) Prepare(ctx context.Context, maxWait time.Duration) {
	daemon.AwaitConnected(ctx, r.Conn, maxWait, false)
}
