package proxy

import (
	"context"
	"encoding/json"
	"sync"

	"flotilla.dev/criproxy/internal/backend"
	netv1 "flotilla.dev/proto/net/v1"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Condition reasons criproxy sets itself.
const (
	ReasonBackendUnavailable = "BackendUnavailable"
	ReasonNetworkNotReady    = "NetworkPluginNotReady"
)

func (p *Proxy) status(ss grpc.ServerStream) error {
	return serveUnary(ss, &runtimeapi.StatusRequest{}, p.Status)
}

// Status merges RuntimeReady (from sandboxd) and NetworkReady (from netd).
// A backend that cannot be asked makes its condition false with a reason
// naming it; Status itself never fails because of a backend.
func (p *Proxy) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, p.StatusTimeout)
	defer cancel()
	var (
		wg      sync.WaitGroup
		rt      runtimeapi.StatusResponse
		rtErr   error
		netResp netv1.StatusResponse
		netErr  error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		rtErr = invoke(ctx, p.Sandboxd, runtimeService+"Status", req, &rt)
	}()
	go func() {
		defer wg.Done()
		netErr = invoke(ctx, p.Netd, "/flotilla.net.v1.NetService/Status", &netv1.StatusRequest{}, &netResp)
	}()
	wg.Wait()

	runtimeCond := &runtimeapi.RuntimeCondition{Type: runtimeapi.RuntimeReady}
	if rtErr != nil {
		runtimeCond.Reason = ReasonBackendUnavailable
		runtimeCond.Message = describe(p.Sandboxd, rtErr)
	} else {
		for _, c := range rt.GetStatus().GetConditions() {
			if c.Type == runtimeapi.RuntimeReady {
				runtimeCond = c
			}
		}
	}
	netCond := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady}
	switch {
	case netErr != nil:
		netCond.Reason = ReasonBackendUnavailable
		netCond.Message = describe(p.Netd, netErr)
	case netResp.Ready:
		netCond.Status = true
	default:
		netCond.Reason = netResp.Reason
		if netCond.Reason == "" {
			netCond.Reason = ReasonNetworkNotReady
		}
		netCond.Message = netResp.Message
	}
	resp := &runtimeapi.StatusResponse{
		Status:          &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{runtimeCond, netCond}},
		RuntimeHandlers: rt.RuntimeHandlers,
		Features:        rt.Features,
		Info:            rt.Info,
	}
	if req.Verbose {
		if resp.Info == nil {
			resp.Info = map[string]string{}
		}
		for k, v := range p.Info {
			resp.Info[k] = v
		}
		resp.Info["backends"] = p.backendsJSON()
		if netResp.Network != "" {
			resp.Info["network"] = netResp.Network
		}
	}
	return resp, nil
}

// BackendHealth is one replica's health as Status' verbose info shows it.
type BackendHealth struct {
	Backend string `json:"backend"`
	Socket  string `json:"socket"`
	Healthy bool   `json:"healthy"`
	Error   string `json:"error,omitempty"`
}

func (p *Proxy) backendsJSON() string {
	var out []BackendHealth
	for _, pool := range []*backend.Pool{p.Imaged, p.Sandboxd, p.Netd} {
		for _, r := range pool.Replicas() {
			out = append(out, BackendHealth{Backend: r.Name, Socket: r.Socket, Healthy: r.Healthy(), Error: r.LastError()})
		}
	}
	b, _ := json.Marshal(out)
	return string(b)
}
