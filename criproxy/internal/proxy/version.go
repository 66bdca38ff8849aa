package proxy

import (
	"context"

	"flotilla.dev/lib/version"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RuntimeName is what Version answers.
const RuntimeName = "flotilla"

// kubeAPIVersion is the version of the kubelet/runtime API (always 0.1.0).
const kubeAPIVersion = "0.1.0"

func (p *Proxy) version(ss grpc.ServerStream) error {
	return serveUnary(ss, &runtimeapi.VersionRequest{}, func(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
		return &runtimeapi.VersionResponse{
			Version:           kubeAPIVersion,
			RuntimeName:       RuntimeName,
			RuntimeVersion:    version.Version,
			RuntimeApiVersion: version.CRIVersion,
		}, nil
	})
}
