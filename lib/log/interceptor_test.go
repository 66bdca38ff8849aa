package log

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/containerd/errdefs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestInterceptorMapsErrorClasses(t *testing.T) {
	l := slog.New(slog.NewTextHandler(io.Discard, nil))
	ic := UnaryServerInterceptor(l)
	cases := []struct {
		err  error
		want codes.Code
	}{
		{nil, codes.OK},
		{fmt.Errorf("pod %s: %w", "x", errdefs.ErrNotFound), codes.NotFound},
		{fmt.Errorf("bad: %w", errdefs.ErrInvalidArgument), codes.InvalidArgument},
		{fmt.Errorf("in use: %w", errdefs.ErrFailedPrecondition), codes.FailedPrecondition},
		{status.Error(codes.Unavailable, "imaged down"), codes.Unavailable},
		{errors.New("boom"), codes.Unknown},
	}
	for _, c := range cases {
		_, err := ic(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/x/Y"},
			func(ctx context.Context, req any) (any, error) {
				if From(ctx) == slog.Default() {
					t.Error("no request logger in context")
				}
				return nil, c.err
			})
		if got := status.Code(err); got != c.want {
			t.Errorf("%v: got %v want %v", c.err, got, c.want)
		}
		if c.err != nil && c.want != codes.Unknown {
			if msg := status.Convert(err).Message(); msg == "" {
				t.Errorf("%v: empty message", c.err)
			}
		}
	}
}
