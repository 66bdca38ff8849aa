// Package backend keeps connections to the replicas of one backend daemon,
// follows their health and picks the one a call goes to.
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
	"google.golang.org/grpc/keepalive"
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

// Healthy reports the replica's health as last seen by Watch.
func (r *Replica) Healthy() bool { return r.healthy.Load() }

// LastError is why the replica is unhealthy, if it is.
func (r *Replica) LastError() string {
	s, _ := r.lastErr.Load().(string)
	return s
}

// Keepalive pings on the connections to replicas; gRPC raises a Time below
// 10 s to 10 s.
const (
	keepaliveTime    = 10 * time.Second
	keepaliveTimeout = 5 * time.Second
)

// Pool is the replicas of one backend.
type Pool struct {
	Name     string
	replicas []*Replica
	next     atomic.Uint32
	log      *slog.Logger
}

// Dial opens (lazily) a connection to every replica. Reconnect backoff is
// capped at one second so a restarted daemon is picked up at once. A
// connection that carried nothing for keepaliveTime is pinged, and closed
// when the ping is not answered within keepaliveTimeout: that is how Watch
// notices a replica that hangs (the daemons' servers accept pings that
// often, see lib/daemon.NewServer).
func Dial(name string, sockets []string, log *slog.Logger, opts ...grpc.DialOption) (*Pool, error) {
	p := &Pool{Name: name, log: log}
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: keepaliveTime, Timeout: keepaliveTimeout}),
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

// Watch follows every replica's health until ctx ends. Each replica gets
// one gRPC health Watch stream, which it answers with its status and then
// with every change, so an idle fleet exchanges nothing (a Check every
// second kept four daemons waking and allocating). The stream ends, and
// the replica is marked unhealthy, when the replica stops (its health
// service turns NOT_SERVING first), dies (the connection closes), or stops
// answering the connection's keepalive pings (see Dial); it is opened
// again after retry.
func (p *Pool) Watch(ctx context.Context, retry time.Duration) {
	var wg sync.WaitGroup
	for _, r := range p.replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				err := p.follow(ctx, r)
				if ctx.Err() != nil {
					return
				}
				p.set(r, false, err.Error())
				select {
				case <-ctx.Done():
					return
				case <-time.After(retry):
				}
			}
		}()
	}
	wg.Wait()
}

// follow keeps r's health up to date from one Watch stream while the
// replica is serving. It returns when the stream fails or the replica
// reports anything but SERVING: the stream is then closed, so a stopping
// replica's graceful stop does not wait for it.
func (p *Pool) follow(ctx context.Context, r *Replica) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := healthpb.NewHealthClient(r.Conn).Watch(cctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("not serving (%s)", s)
		}
		p.set(r, true, "")
	}
}

func (p *Pool) set(r *Replica, ok bool, msg string) {
	r.lastErr.Store(msg)
	if was := r.healthy.Swap(ok); was != ok {
		p.log.Info("backend health changed", "backend", r.Name, "socket", r.Socket, "healthy", ok)
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
