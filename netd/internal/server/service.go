// Package server runs netd: the net.v1 service on its socket.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"flotilla.dev/lib/bus"
	"flotilla.dev/lib/ids"
	flog "flotilla.dev/lib/log"
	"flotilla.dev/netd/internal/cni"
	"flotilla.dev/netd/internal/config"
	"flotilla.dev/netd/internal/store"
	eventsv1 "flotilla.dev/proto/events/v1"
	netv1 "flotilla.dev/proto/net/v1"
	"github.com/containerd/errdefs"
)

// pluginTimeout bounds one CNI ADD, CHECK or DEL of a whole conflist.
const pluginTimeout = 2 * time.Minute

// Service implements net.v1.
type Service struct {
	netv1.UnimplementedNetServiceServer
	cfg    *config.Config
	bus    bus.Bus
	log    *slog.Logger
	loader *cni.Loader
	runner *cni.Runner
	store  *store.Store

	locks sync.Map // pod id -> *sync.Mutex

	mu      sync.Mutex
	podCIDR string
}

// New opens netd's state under cfg.Root and cfg.RunRoot.
func New(cfg *config.Config, b bus.Bus, log *slog.Logger) (*Service, error) {
	st, err := store.Open(filepath.Join(cfg.Root, "pods"))
	if err != nil {
		return nil, err
	}
	return &Service{
		cfg: cfg, bus: b, log: log, store: st,
		loader: cni.NewLoader(cfg.ConfDir, cfg.Network, cfg.BinDirs),
		runner: cni.NewRunner(cfg.BinDirs, filepath.Join(cfg.Root, "cni-cache"), filepath.Join(cfg.RunRoot, "netd", "cni-partial")),
	}, nil
}

// Close closes netd's record store.
func (s *Service) Close() error { return s.store.Close() }

func (s *Service) netnsPath(id string) string { return filepath.Join(s.cfg.RunRoot, "netns", id) }

func validID(id string) error {
	if !ids.Name(id, 128) {
		return fmt.Errorf("pod id %q: want 1-128 letters, digits, '_', '.', '-': %w", id, errdefs.ErrInvalidArgument)
	}
	return nil
}

// lock serialises operations on one pod.
func (s *Service) lock(id string) func() {
	m, _ := s.locks.LoadOrStore(id, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// network loads the configuration, announcing changes.
func (s *Service) network() *cni.State {
	st, changed := s.loader.Load()
	if changed {
		s.log.Info("network configuration changed", "file", st.File, "ready", st.Ready(), "reason", st.Reason, "message", st.Message)
		msg := st.Message
		if st.Ready() {
			msg = fmt.Sprintf("network %q from %s", st.List.Name, st.File)
		}
		s.publish(eventsv1.SubjectNetworkConfigChanged, "", "config_changed", nil, msg)
	}
	return st
}

func (s *Service) publish(subject, podID, state string, ips []string, msg string) {
	s.bus.Publish(subject, &eventsv1.Envelope{Payload: &eventsv1.Envelope_Network{
		Network: &eventsv1.NetworkEvent{PodId: podID, State: state, Ips: ips, Message: msg}}})
}

func toProto(r *store.Record) *netv1.PodNetwork {
	return &netv1.PodNetwork{PodId: r.PodID, NetnsPath: r.NetNS, Ips: r.IPs, Network: r.Network, Name: r.Name, Namespace: r.Namespace}
}

// detached gives cleanup work its own deadline, unaffected by the caller
// going away, so a cancelled request never leaves half a network behind.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(flog.WithLogger(context.Background(), flog.From(ctx)), pluginTimeout)
}
