package log

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	"flotilla.dev/lib/metrics"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// RequestIDHeader carries a request id across daemons.
const RequestIDHeader = "x-flotilla-request-id"

// ToStatus maps an error to a gRPC status error once, at the edge: errors
// that already carry a status keep it; errdefs classes map to their codes.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return errgrpc.ToGRPC(err)
}

func requestID(ctx context.Context) string {
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(RequestIDHeader); len(v) > 0 && v[0] != "" {
			return v[0]
		}
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func done(ctx context.Context, l *slog.Logger, method string, start time.Time, err error) error {
	err = ToStatus(err)
	code := status.Code(err)
	metrics.Observe(method, code.String(), time.Since(start))
	attrs := []any{KeyMethod, method, KeyDuration, time.Since(start), KeyCode, code.String()}
	if err != nil {
		attrs = append(attrs, KeyError, status.Convert(err).Message())
		l.LogAttrs(ctx, levelFor(code.String()), "request failed", toAttrs(attrs)...)
	} else {
		l.LogAttrs(ctx, slog.LevelDebug, "request", toAttrs(attrs)...)
	}
	return err
}

func levelFor(code string) slog.Level {
	switch code {
	case "Internal", "Unknown", "DataLoss":
		return slog.LevelError
	case "NotFound", "Canceled":
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

func toAttrs(kv []any) []slog.Attr {
	out := make([]slog.Attr, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, slog.Any(kv[i].(string), kv[i+1]))
	}
	return out
}

// UnaryServerInterceptor is the one unary interceptor every daemon installs.
func UnaryServerInterceptor(base *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		id := requestID(ctx)
		l := base.With(KeyRequestID, id)
		ctx = WithLogger(ctx, l)
		ctx = metadata.AppendToOutgoingContext(ctx, RequestIDHeader, id)
		resp, err := handler(ctx, req)
		return resp, done(ctx, l, info.FullMethod, start, err)
	}
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }

// StreamServerInterceptor is the streaming counterpart.
func StreamServerInterceptor(base *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		id := requestID(ss.Context())
		l := base.With(KeyRequestID, id)
		ctx := WithLogger(ss.Context(), l)
		ctx = metadata.AppendToOutgoingContext(ctx, RequestIDHeader, id)
		err := handler(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
		return done(ctx, l, info.FullMethod, start, err)
	}
}

// ServerOptions returns the interceptors as grpc.ServerOptions.
func ServerOptions(base *slog.Logger) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(UnaryServerInterceptor(base)),
		grpc.ChainStreamInterceptor(StreamServerInterceptor(base)),
	}
}
