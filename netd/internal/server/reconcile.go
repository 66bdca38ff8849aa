package server

import (
	"context"
	"os"
	"path/filepath"

	flog "flotilla.dev/lib/log"
	"flotilla.dev/lib/netns"
	"flotilla.dev/netd/internal/store"
	eventsv1 "flotilla.dev/proto/events/v1"
)

// Reconcile runs at start: pods whose setup was interrupted or whose
// namespace is gone get CNI DEL (releasing their IPs) and are forgotten;
// pinned namespaces without a record are removed. Pods with a live
// namespace keep their network.
func (s *Service) Reconcile(ctx context.Context) {
	recs, errs := s.store.List()
	for _, err := range errs {
		s.log.Error("unreadable pod network record", flog.KeyError, err)
	}
	known := map[string]bool{}
	for _, rec := range recs {
		if rec.Phase == store.Ready && netns.IsPinned(rec.NetNS) {
			known[filepath.Base(rec.NetNS)] = true
			continue
		}
		reason := "namespace gone"
		if rec.Phase != store.Ready {
			reason = "interrupted setup"
		}
		unlock := s.lock(rec.PodID)
		err := s.teardown(ctx, rec, rec.Phase != store.Ready)
		unlock()
		if err != nil {
			s.log.Warn("release stale pod network", flog.KeyPodID, rec.PodID, "reason", reason, flog.KeyError, err)
			continue
		}
		s.log.Info("released stale pod network", flog.KeyPodID, rec.PodID, "reason", reason)
		s.publish(eventsv1.SubjectNetworkTeardown, rec.PodID, "teardown", rec.IPs, "released at start: "+reason)
	}
	s.gc(ctx)
	dir := filepath.Join(s.cfg.RunRoot, "netns")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if known[e.Name()] {
			continue
		}
		if err := netns.Remove(filepath.Join(dir, e.Name())); err != nil {
			s.log.Warn("remove orphan netns", "path", filepath.Join(dir, e.Name()), flog.KeyError, err)
		} else {
			s.log.Info("removed orphan netns", "path", filepath.Join(dir, e.Name()))
		}
	}
}

// gc runs CNI GC on the current network with every pod netd still holds as
// a valid attachment: libcni runs DEL for attachments in its cache that no
// record owns (a hand-deleted record), and for cniVersion >= 1.1.0 the
// plugins' GC runs too (upstream bridge v1.10 does not pass GC on to
// host-local, so IPs leaked outside libcni's cache are not found that way).
func (s *Service) gc(ctx context.Context) {
	st, _ := s.loader.Load()
	if !st.Ready() {
		return
	}
	recs, errs := s.store.List()
	if len(errs) > 0 {
		return // an unreadable record may be a live pod: collect nothing
	}
	var valid []string
	for _, r := range recs {
		valid = append(valid, r.PodID)
	}
	gctx, cancel := context.WithTimeout(ctx, pluginTimeout)
	defer cancel()
	if err := s.runner.GC(gctx, st.List, valid); err != nil {
		s.log.Warn("CNI GC", "network", st.List.Name, flog.KeyError, err)
	}
}
