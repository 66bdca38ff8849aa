package proxy

import (
	"context"

	netv1 "flotilla.dev/proto/net/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// updateRuntimeConfig hands the kubelet's runtime config to sandboxd and
// the pod CIDR to netd.
func (p *Proxy) updateRuntimeConfig(ss grpc.ServerStream) error {
	return serveUnary(ss, &runtimeapi.UpdateRuntimeConfigRequest{}, func(ctx context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
		var resp runtimeapi.UpdateRuntimeConfigResponse
		if err := invoke(ctx, p.Sandboxd, runtimeService+"UpdateRuntimeConfig", req, &resp); err != nil && status.Code(err) != codes.Unimplemented {
			return nil, err
		}
		if cidr := req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr(); cidr != "" {
			err := invoke(ctx, p.Netd, "/flotilla.net.v1.NetService/UpdateConfig", &netv1.UpdateConfigRequest{PodCidr: cidr}, &netv1.UpdateConfigResponse{})
			if err != nil && status.Code(err) != codes.Unimplemented {
				return nil, err
			}
		}
		return &resp, nil
	})
}
