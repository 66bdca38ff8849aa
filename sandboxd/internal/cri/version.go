package cri

import (
	"context"

	"flotilla.dev/lib/version"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Version answers for the runtime (criproxy aggregates it; crictl against
// sandboxd's own socket asks it too).
func (s *Service) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "flotilla", RuntimeVersion: version.Version, RuntimeApiVersion: version.CRIVersion}, nil
}

// Status reports RuntimeReady (criproxy adds NetworkReady from netd), the
// runtime handlers with their features, and the runtime's features.
func (s *Service) Status(context.Context, *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true},
	}}, RuntimeHandlers: s.runtimeHandlers(), Features: runtimeFeatures()}, nil
}
