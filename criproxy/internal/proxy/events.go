package proxy

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	eventsv1 "flotilla.dev/proto/events/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// containerEvents serves GetContainerEvents from NATS: sandboxd publishes
// every container lifecycle change with the CRI event already encoded, and
// criproxy relays it without decoding.
func (p *Proxy) containerEvents(ss grpc.ServerStream) error {
	var req runtimeapi.GetEventsRequest
	if err := ss.RecvMsg(&req); err != nil {
		return err
	}
	if p.Bus == nil {
		return status.Error(codes.Unavailable, "criproxy: no event bus configured")
	}
	// Buffered so a slow client does not stall the NATS dispatcher; a client
	// that falls this far behind is cut off (the kubelet then relists).
	ch := make(chan []byte, 1024)
	overflow := make(chan struct{})
	var closed bool
	unsub, err := p.Bus.Subscribe(eventsv1.SubjectContainerAll, func(e *eventsv1.Envelope) {
		data := e.GetContainer().GetCriEvent()
		if len(data) == 0 {
			return
		}
		select {
		case ch <- data:
		default:
			if !closed {
				closed = true
				close(overflow)
			}
		}
	})
	if err != nil {
		return status.Errorf(codes.Unavailable, "criproxy: subscribe to container events: %v", err)
	}
	defer unsub()
	if err := ss.SendHeader(nil); err != nil {
		return err
	}
	for {
		select {
		case <-ss.Context().Done():
			return nil
		case <-overflow:
			return status.Error(codes.ResourceExhausted, "criproxy: container event stream fell behind; reconnect and relist")
		case data := <-ch:
			if err := ss.SendMsg(&frame{data: data}); err != nil {
				return err
			}
		}
	}
}
