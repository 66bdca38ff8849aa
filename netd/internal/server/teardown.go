package server

import (
	"context"
	"errors"
	"fmt"

	flog "flotilla.dev/lib/log"
	"flotilla.dev/lib/netns"
	"flotilla.dev/netd/internal/store"
	eventsv1 "flotilla.dev/proto/events/v1"
	netv1 "flotilla.dev/proto/net/v1"
	"github.com/containerd/errdefs"
	"github.com/containernetworking/cni/libcni"
)

// TeardownPod runs CNI DEL and removes the namespace. A pod netd does not
// know succeeds; DEL runs even when the namespace is gone, so the IP is
// released.
func (s *Service) TeardownPod(ctx context.Context, req *netv1.TeardownPodRequest) (*netv1.TeardownPodResponse, error) {
	id := req.GetPodId()
	if err := validID(id); err != nil {
		return nil, err
	}
	unlock := s.lock(id)
	defer unlock()
	rec, err := s.store.Get(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		if err := netns.Remove(s.netnsPath(id)); err != nil {
			return nil, err
		}
		return &netv1.TeardownPodResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.teardown(ctx, rec, false); err != nil {
		return nil, fmt.Errorf("pod %s: %w", id, err)
	}
	flog.From(ctx).Info("pod network torn down", flog.KeyPodID, id)
	s.publish(eventsv1.SubjectNetworkTeardown, id, "teardown", rec.IPs, "")
	return &netv1.TeardownPodResponse{}, nil
}

// teardown undoes rec: DEL with the conflist ADD used (without a namespace
// if it is gone), unpin, forget. The record stays when DEL fails so that a
// retry can release what the plugins hold, unless force (undoing a failed
// ADD, whose plugins may fail DEL the same way): then the failure is logged
// and the namespace and record go anyway.
func (s *Service) teardown(ctx context.Context, rec *store.Record, force bool) error {
	path := rec.NetNS
	if !netns.IsPinned(path) {
		path = ""
	}
	list, err := libcni.NetworkConfFromBytes(rec.ConfList)
	if err != nil {
		// Cannot happen for records this netd wrote; don't keep it forever.
		flog.From(ctx).Error("unreadable conflist in record, skipping CNI DEL", flog.KeyPodID, rec.PodID, flog.KeyError, err)
	} else {
		dctx, cancel := context.WithTimeout(ctx, pluginTimeout)
		err := s.runner.Del(dctx, list, rec.PodID, path, rec.Args, rec.CapabilityArgs)
		cancel()
		if err != nil && !force {
			return fmt.Errorf("network %q: %w", list.Name, err)
		}
		if err != nil {
			flog.From(ctx).Warn("CNI DEL failed while undoing a failed setup", flog.KeyPodID, rec.PodID, flog.KeyError, err)
		}
	}
	if err := netns.Remove(rec.NetNS); err != nil {
		return err
	}
	return s.store.Delete(rec.PodID)
}
