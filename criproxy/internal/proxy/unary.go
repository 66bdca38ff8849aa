package proxy

import (
	"context"
	"fmt"
	"strings"

	"flotilla.dev/criproxy/internal/backend"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// serveUnary decodes the request into req, calls fn and sends its answer.
func serveUnary[Req proto.Message, Resp proto.Message](ss grpc.ServerStream, req Req, fn func(context.Context, Req) (Resp, error)) error {
	if err := ss.RecvMsg(req); err != nil {
		return err
	}
	resp, err := fn(ss.Context(), req)
	if err != nil {
		return err
	}
	return ss.SendMsg(resp)
}

// invoke makes a typed unary call on the first replica of pool that can be
// reached, naming the backend when none can.
func invoke(ctx context.Context, pool *backend.Pool, method string, req, resp proto.Message) error {
	return tryReplicas(ctx, pool, func(r *backend.Replica) (bool, error) {
		err := r.Conn.Invoke(ctx, method, req, resp, grpc.ForceCodec(codec{})) //nolint:staticcheck
		return err == nil || !unreachable(err), err
	})
}

// describe renders an error from a backend for a condition's message.
func describe(pool *backend.Pool, err error) string {
	st := status.Convert(err)
	if st.Code() == codes.Unavailable && strings.HasPrefix(st.Message(), pool.Name) {
		return st.Message()
	}
	return fmt.Sprintf("%s: %s: %s", pool.Name, st.Code(), st.Message())
}
