package daemon

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

// ReadyWait is how long a call waits for a daemon that is not connected
// (still starting, or restarting) before it fails with Unavailable.
const ReadyWait = 5 * time.Second

// DialUnix connects to another daemon's unix socket. Reconnect backoff is
// capped at 250 ms, and a call made while the connection is down first
// waits up to ReadyWait for it to come back, so a daemon started a moment
// later or restarted is used at once, while a daemon that stays down still
// fails the call quickly.
func DialUnix(path string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 250 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}),
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			awaitReady(ctx, cc)
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			awaitReady(ctx, cc)
			return streamer(ctx, desc, cc, method, opts...)
		}),
	}
	conn, err := grpc.NewClient("unix://"+path, append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", path, err)
	}
	return conn, nil
}

func awaitReady(ctx context.Context, cc *grpc.ClientConn) { AwaitConnected(ctx, cc, ReadyWait, true) }

// AwaitConnected makes a fresh connection attempt on cc when it is not
// ready (cutting short any reconnect backoff) and waits at most wait for it.
// With retry, refused attempts are tried again until the wait ends; without,
// it returns as soon as the fresh attempt failed.
func AwaitConnected(ctx context.Context, cc *grpc.ClientConn, wait time.Duration, retry bool) {
	s := cc.GetState()
	if s == connectivity.Ready {
		return
	}
	if s == connectivity.TransientFailure {
		cc.ResetConnectBackoff()
	}
	cc.Connect()
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	connecting := false
	for s = cc.GetState(); s != connectivity.Ready && s != connectivity.Shutdown; s = cc.GetState() {
		switch s {
		case connectivity.Connecting:
			connecting = true
		case connectivity.TransientFailure:
			if !retry && connecting {
				return
			}
			if retry {
				cc.ResetConnectBackoff()
			}
		}
		if !cc.WaitForStateChange(wctx, s) {
			return
		}
	}
}
