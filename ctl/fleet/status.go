package fleet

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Status is the CRI Status as the fleet's front door reports it.
type Status struct {
	RuntimeReady, NetworkReady     bool
	RuntimeReason, NetworkReason   string
	RuntimeMessage, NetworkMessage string
}

func (s *Status) String() string {
	if s == nil {
		return "no status"
	}
	return fmt.Sprintf("RuntimeReady=%v %s %s; NetworkReady=%v %s %s", s.RuntimeReady, s.RuntimeReason, s.RuntimeMessage,
		s.NetworkReady, s.NetworkReason, s.NetworkMessage)
}

// Dial connects to a CRI socket.
func Dial(socket string) (*grpc.ClientConn, error) {
	return grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// QueryStatus asks the CRI socket for Status (2 s deadline).
func QueryStatus(ctx context.Context, socket string) (*Status, error) {
	conn, err := Dial(socket)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := runtimeapi.NewRuntimeServiceClient(conn).Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return nil, err
	}
	st := &Status{}
	for _, c := range resp.GetStatus().GetConditions() {
		switch c.Type {
		case runtimeapi.RuntimeReady:
			st.RuntimeReady, st.RuntimeReason, st.RuntimeMessage = c.Status, c.Reason, c.Message
		case runtimeapi.NetworkReady:
			st.NetworkReady, st.NetworkReason, st.NetworkMessage = c.Status, c.Reason, c.Message
		}
	}
	return st, nil
}

// Healthy reports whether a daemon's socket answers the gRPC health check.
func Healthy(ctx context.Context, socket string) bool {
	conn, err := Dial(socket)
	if err != nil {
		return false
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err == nil && resp.Status == healthpb.HealthCheckResponse_SERVING
}

// DaemonsHealthy reports whether every backend daemon of the fleet answers.
func (f *Fleet) DaemonsHealthy(ctx context.Context) bool {
	for _, d := range Daemons {
		if d != "criproxy" && !Healthy(ctx, f.Layout.Socket(d)) {
			return false
		}
	}
	return true
}
