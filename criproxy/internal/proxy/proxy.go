// Package proxy is criproxy's CRI front door: it forwards every
// runtime.v1.RuntimeService and runtime.v1.ImageService call to its backend
// without decoding it, and answers Version, Status and GetContainerEvents
// itself.
package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"time"

	"flotilla.dev/criproxy/internal/backend"
	"flotilla.dev/lib/bus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// CRI service prefixes.
const (
	runtimeService = "/runtime.v1.RuntimeService/"
	imageService   = "/runtime.v1.ImageService/"
)

// Proxy routes CRI calls.
type Proxy struct {
	Imaged, Sandboxd, Netd *backend.Pool
	Bus                    bus.Bus
	// StatusTimeout bounds the backend calls behind Status.
	StatusTimeout time.Duration
	Log           *slog.Logger
	// Info is extra data for a verbose Status (e.g. the config).
	Info map[string]string
}

// ServerOptions make a grpc.Server route every method through the proxy.
func (p *Proxy) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ForceServerCodec(codec{}), //nolint:staticcheck // the v1 codec API is what a pass-through needs
		grpc.UnknownServiceHandler(p.handle),
		grpc.MaxRecvMsgSize(64 << 20),
		grpc.MaxSendMsgSize(64 << 20),
	}
}

// Route returns the pool a method goes to, or nil when no backend serves it.
func (p *Proxy) Route(method string) *backend.Pool {
	switch {
	case strings.HasPrefix(method, imageService):
		return p.Imaged
	case strings.HasPrefix(method, runtimeService):
		return p.Sandboxd
	}
	return nil
}

func (p *Proxy) handle(_ any, ss grpc.ServerStream) error {
	method, ok := grpc.MethodFromServerStream(ss)
	if !ok {
		return status.Error(codes.Internal, "criproxy: no method in stream")
	}
	switch method {
	case runtimeService + "Version":
		return p.version(ss)
	case runtimeService + "Status":
		return p.status(ss)
	case runtimeService + "GetContainerEvents":
		return p.containerEvents(ss)
	case runtimeService + "UpdateRuntimeConfig":
		return p.updateRuntimeConfig(ss)
	}
	pool := p.Route(method)
	if pool == nil {
		return status.Errorf(codes.Unimplemented, "criproxy: unknown method %s", method)
	}
	return p.Forward(ss, pool, method)
}

// prepareWait bounds the wait for a fresh connection attempt to a replica,
// so a backend that is down still fails a call well within 2 s.
const prepareWait = 500 * time.Millisecond

var anyStream = &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

// Forward sends the client's request to a replica of pool and relays every
// response back. Every CRI RPC has exactly one request message, so a replica
// that is unreachable before it answered anything is skipped for the next.
func (p *Proxy) Forward(ss grpc.ServerStream, pool *backend.Pool, method string) error {
	var req frame
	if err := ss.RecvMsg(&req); err != nil {
		return err
	}
	ctx := ss.Context()
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		md = md.Copy()
		delete(md, ":authority")
		delete(md, "content-type")
		delete(md, "user-agent")
		ctx = metadata.NewOutgoingContext(ctx, md)
	}
	return tryReplicas(ctx, pool, func(r *backend.Replica) (bool, error) {
		return p.forwardTo(ctx, ss, r, method, &req)
	})
}

// tryReplicas calls fn on each replica of pool in turn until one was
// reached (fn reports whether the replica got the call), and fails with
// Unavailable naming the backend and every socket tried when none was.
func tryReplicas(ctx context.Context, pool *backend.Pool, fn func(*backend.Replica) (reached bool, err error)) error {
	var lastErr error
	var tried []string
	for _, r := range pool.Candidates() {
		r.Prepare(ctx, prepareWait)
		reached, err := fn(r)
		if reached {
			return err
		}
		lastErr = err
		tried = append(tried, r.Target())
		r.Conn.ResetConnectBackoff()
	}
	return status.Errorf(codes.Unavailable, "%s unavailable: %s: %v", pool.Name, strings.Join(tried, ", "), status.Convert(lastErr).Message())
}

// forwardTo relays one call; done is false when the replica could not be
// reached before it produced anything, so the caller may try another.
func (p *Proxy) forwardTo(ctx context.Context, ss grpc.ServerStream, r *backend.Replica, method string, req *frame) (done bool, err error) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cs, err := r.Conn.NewStream(cctx, anyStream, method, grpc.ForceCodec(codec{})) //nolint:staticcheck
	if err != nil {
		return !unreachable(err), err
	}
	if err := cs.SendMsg(req); err != nil && !errors.Is(err, io.EOF) {
		return !unreachable(err), err
	}
	if err := cs.CloseSend(); err != nil {
		return !unreachable(err), err
	}
	sent := false
	for {
		var resp frame
		err := cs.RecvMsg(&resp)
		if !sent {
			if err != nil && !errors.Is(err, io.EOF) && unreachable(err) {
				return false, err
			}
			if h, herr := cs.Header(); herr == nil && len(h) > 0 {
				_ = ss.SendHeader(h)
			}
		}
		if errors.Is(err, io.EOF) {
			ss.SetTrailer(cs.Trailer())
			return true, nil
		}
		if err != nil {
			ss.SetTrailer(cs.Trailer())
			return true, err
		}
		sent = true
		if err := ss.SendMsg(&resp); err != nil {
			return true, err
		}
	}
}

// unreachable tells a connection failure (the call never reached the
// backend, or the backend died under it) from an answer the backend gave,
// which is relayed as it is.
func unreachable(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return false
	}
	// gRPC's own transport errors start with these; a backend that relays
	// an error of its own dependencies wraps it in its own words first.
	msg := st.Message()
	for _, p := range []string{"connection error", "error reading from server", "transport is closing", "the connection is draining", "last connection error", "dial"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}
