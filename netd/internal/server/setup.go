package server

import (
	"context"
	"errors"
	"fmt"

	flog "flotilla.dev/lib/log"
	"flotilla.dev/lib/metrics"
	"flotilla.dev/lib/netns"
	"flotilla.dev/netd/internal/cni"
	"flotilla.dev/netd/internal/store"
	eventsv1 "flotilla.dev/proto/events/v1"
	netv1 "flotilla.dev/proto/net/v1"
	"github.com/containerd/errdefs"
)

// SetupPod creates and pins the pod's namespace and runs CNI ADD in it.
// Idempotent: a pod already set up gets its existing network back. On any
// failure nothing is left behind (DEL releases what ADD allocated).
func (s *Service) SetupPod(ctx context.Context, req *netv1.SetupPodRequest) (*netv1.SetupPodResponse, error) {
	id := req.GetPodId()
	if err := validID(id); err != nil {
		return nil, err
	}
	if req.GetName() == "" || req.GetNamespace() == "" {
		return nil, fmt.Errorf("pod %s: name and namespace are required: %w", id, errdefs.ErrInvalidArgument)
	}
	pod := &cni.Pod{ID: id, Name: req.GetName(), Namespace: req.GetNamespace(), UID: req.GetUid(),
		Annotations: req.GetAnnotations()}
	for _, pm := range req.GetPortMappings() {
		pod.PortMappings = append(pod.PortMappings, cni.PortMapping{HostPort: pm.GetHostPort(),
			ContainerPort: pm.GetContainerPort(), Protocol: pm.GetProtocol(), HostIP: pm.GetHostIp()})
	}
	if d := req.GetDns(); d != nil {
		pod.DNS = &cni.DNS{Servers: d.GetServers(), Searches: d.GetSearches(), Options: d.GetOptions()}
	}
	s.mu.Lock()
	pod.PodCIDR = s.podCIDR
	s.mu.Unlock()
	caps, err := cni.CapabilityArgs(pod)
	if err != nil {
		return nil, fmt.Errorf("pod %s: %w", id, err)
	}

	unlock := s.lock(id)
	defer unlock()
	log := flog.From(ctx).With(flog.KeyPodID, id)
	ph := metrics.StartPhases("setup_pod")
	defer ph.Done(log)

	switch rec, err := s.store.Get(id); {
	case err == nil && rec.Phase == store.Ready && netns.IsPinned(rec.NetNS):
		return &netv1.SetupPodResponse{Network: toProto(rec)}, nil
	case err == nil:
		// A half-made or orphaned network: clear it before starting over.
		if err := s.teardown(ctx, rec, false); err != nil {
			return nil, fmt.Errorf("pod %s: clear stale network: %w", id, err)
		}
	case !errors.Is(err, errdefs.ErrNotFound):
		return nil, err
	}

	st := s.network()
	if !st.Ready() {
		return nil, fmt.Errorf("pod %s: network not ready: %s: %s: %w", id, st.Reason, st.Message, errdefs.ErrFailedPrecondition)
	}
	rec := &store.Record{PodID: id, Name: pod.Name, Namespace: pod.Namespace, UID: pod.UID, Phase: store.Creating,
		NetNS: s.netnsPath(id), IfName: cni.IfName, Network: st.List.Name, ConfList: st.List.Bytes,
		Args: cni.Args(pod), CapabilityArgs: caps}
	if err := s.recordAndCreateNetNS(rec); err != nil {
		return nil, fmt.Errorf("pod %s: %w", id, err)
	}
	ph.Mark("record_and_netns")
	actx, cancel := context.WithTimeout(ctx, pluginTimeout)
	ips, err := s.runner.Add(actx, st.List, id, rec.NetNS, rec.Args, rec.CapabilityArgs)
	cancel()
	if err != nil {
		log.Warn("CNI ADD failed", flog.KeyError, err, "network", st.List.Name)
		cctx, ccancel := detached(ctx)
		if cerr := s.teardown(cctx, rec, true); cerr != nil {
			log.Error("clean up after failed CNI ADD", flog.KeyError, cerr)
		}
		ccancel()
		s.publish(eventsv1.SubjectNetworkFailed, id, "failed", nil, err.Error())
		return nil, fmt.Errorf("pod %s: network %q (%s): %w", id, st.List.Name, st.File, err)
	}
	ph.Mark("cni_add")
	rec.IPs, rec.Phase = ips, store.Ready
	// On disk before SetupPod answers: a netd killed after the answer must
	// find the pod Ready at its next start, as Reconcile undoes a Creating
	// one. Concurrent pod starts share the commit (lib/boltstore).
	if err := s.store.Put(rec); err != nil {
		cctx, ccancel := detached(ctx)
		_ = s.teardown(cctx, rec, true)
		ccancel()
		return nil, err
	}
	ph.Mark("store_ready")
	log.Info("pod network set up", "ips", ips, "network", rec.Network)
	s.publish(eventsv1.SubjectNetworkSetup, id, "setup", ips, "")
	return &netv1.SetupPodResponse{Network: toProto(rec)}, nil
}

// recordAndCreateNetNS writes rec (phase Creating) durably and creates and
// pins its network namespace, side by side: CNI ADD, the first step that
// allocates anything a restart could not find without the record, runs
// only after both. A namespace without a record (a crash in between) is
// removed by Reconcile; on failure neither is left.
func (s *Service) recordAndCreateNetNS(rec *store.Record) error {
	stored := make(chan error, 1)
	go func() { stored <- s.store.Put(rec) }()
	// No record owns a pin left at this path (say, from a crash before the
	// last reconcile): it is stale.
	nerr := netns.Remove(rec.NetNS)
	if nerr == nil {
		nerr = netns.Create(rec.NetNS)
	}
	serr := <-stored
	switch {
	case serr != nil:
		if nerr == nil {
			_ = netns.Remove(rec.NetNS)
		}
		_ = s.store.Delete(rec.PodID)
		return serr
	case nerr != nil:
		_ = s.store.Delete(rec.PodID)
		return nerr
	}
	return nil
}
