// Package cri implements runtime.v1.RuntimeService for sandboxd: pods
// (pinned namespaces, netd networks) and containers (OCI specs run by
// flotilla-shim). One file per RPC.
package cri

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"flotilla.dev/lib/bus"
	imagev1 "flotilla.dev/proto/image/v1"
	netv1 "flotilla.dev/proto/net/v1"
	"flotilla.dev/sandboxd/internal/config"
	"flotilla.dev/sandboxd/internal/names"
	"flotilla.dev/sandboxd/internal/oci"
	"flotilla.dev/sandboxd/internal/store"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Deps are the service's collaborators, built in main.
type Deps struct {
	Config *config.Config
	Store  *store.Store
	Bus    bus.Bus
	Net    netv1.NetServiceClient
	Rootfs imagev1.RootfsServiceClient
	// Images is imaged's CRI ImageService (the same socket), used to pull
	// the pause image when a pod needs it and it is missing.
	Images runtimeapi.ImageServiceClient
	Shims  Shims
	Log    *slog.Logger
	// Host facts; zero values are read from the host by New.
	Bounding    oci.CapSet
	OOM         *oci.OOMPolicy
	HostDevices []specs.LinuxDevice
}

// Service implements the CRI RuntimeService (less Version, Status and
// GetContainerEvents, which criproxy answers).
type Service struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	Deps
	oom      oci.OOMPolicy
	seccomp  func(oci.CapSet) *specs.LinuxSeccomp
	podNames *names.Registry
	ctrNames *names.Registry

	mu   sync.RWMutex
	pods map[string]*sandbox
	ctrs map[string]*container

	streaming *Streaming

	// shimAbs is the shim's absolute path (rroHook), found once.
	shimOnce sync.Once
	shimAbs  string

	// bg is the context of background work (exit monitors); cancelled by Close.
	bg     context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Locking: op serializes lifecycle operations (held across slow calls);
// mu guards rec and is only held briefly. Order: pod op → container op →
// any mu; never s.mu while holding a mu... except s.mu → nothing.
type sandbox struct {
	id, dir string // immutable: read without locks
	op      sync.Mutex
	mu      sync.Mutex
	rec     *store.Pod
	cfg     *runtimeapi.PodSandboxConfig
}

type container struct {
	// Immutable: read without locks.
	id, podID, bundle string
	infra             bool
	created           int64

	op   sync.Mutex
	mu   sync.Mutex
	rec  *store.Container
	cfg  *runtimeapi.ContainerConfig
	shim Shim          // nil when the shim is gone
	exit chan struct{} // closed once the exit is recorded
}

// New builds the service and loads the records (see recover.go).
func New(ctx context.Context, d Deps) (*Service, error) {
	s := &Service{Deps: d, podNames: names.New(), ctrNames: names.New(),
		pods: map[string]*sandbox{}, ctrs: map[string]*container{}}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.Bounding == nil {
		b, err := oci.BoundingSet()
		if err != nil {
			return nil, err
		}
		s.Bounding = b
	}
	if d.OOM != nil {
		s.oom = *d.OOM
	} else {
		s.oom = hostOOMPolicy()
	}
	if s.HostDevices == nil {
		s.HostDevices = hostDevices()
	}
	s.seccomp = oci.DefaultSeccomp
	if p := d.Config.SeccompProfile; p != "" {
		prof, err := oci.LoadSeccomp(p)
		if err != nil {
			return nil, err
		}
		s.seccomp = func(oci.CapSet) *specs.LinuxSeccomp { return prof }
	}
	s.bg, s.cancel = context.WithCancel(context.Background())
	if err := s.recover(ctx); err != nil {
		s.cancel()
		return nil, err
	}
	// Before serving: nothing is created concurrently with the cleanup.
	s.reconcile(ctx)
	return s, nil
}

// Close stops background monitors; containers and shims keep running.
func (s *Service) Close() {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.ctrs {
		if c.shim != nil {
			_ = c.shim.Close()
		}
	}
}

func newID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestKey identifies a create request for name reservation.
func requestKey(msgs ...proto.Message) string {
	h := sha256.New()
	for _, m := range msgs {
		b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func podName(m *runtimeapi.PodSandboxMetadata) string {
	return fmt.Sprintf("%s_%s_%s_%d", m.GetName(), m.GetNamespace(), m.GetUid(), m.GetAttempt())
}

func ctrName(podID string, m *runtimeapi.ContainerMetadata) string {
	return fmt.Sprintf("%s/%s_%d", podID, m.GetName(), m.GetAttempt())
}

// lookupPod finds a pod by id or unique id prefix.
func (s *Service) lookupPod(id string) (*sandbox, error) {
	if id == "" {
		return nil, fmt.Errorf("pod sandbox id is empty: %w", errdefs.ErrInvalidArgument)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p, ok := s.pods[id]; ok {
		return p, nil
	}
	var found *sandbox
	for k, p := range s.pods {
		if strings.HasPrefix(k, id) {
			if found != nil {
				return nil, fmt.Errorf("pod sandbox id prefix %q is ambiguous: %w", id, errdefs.ErrInvalidArgument)
			}
			found = p
		}
	}
	if found == nil {
		return nil, fmt.Errorf("pod sandbox %q: %w", id, errdefs.ErrNotFound)
	}
	return found, nil
}

// lookupContainer finds a container (never an infra one) by id or prefix.
func (s *Service) lookupContainer(id string) (*container, error) {
	if id == "" {
		return nil, fmt.Errorf("container id is empty: %w", errdefs.ErrInvalidArgument)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c, ok := s.ctrs[id]; ok && !c.infra {
		return c, nil
	}
	var found *container
	for k, c := range s.ctrs {
		if strings.HasPrefix(k, id) && !c.infra {
			if found != nil {
				return nil, fmt.Errorf("container id prefix %q is ambiguous: %w", id, errdefs.ErrInvalidArgument)
			}
			found = c
		}
	}
	if found == nil {
		return nil, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
	}
	return found, nil
}

// podContainers lists the pod's containers (infra last), sorted by creation.
func (s *Service) podContainers(podID string) []*container {
	s.mu.RLock()
	var out []*container
	for _, c := range s.ctrs {
		if c.podID == podID {
			out = append(out, c)
		}
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].infra != out[j].infra {
			return !out[i].infra
		}
		return out[i].created < out[j].created
	})
	return out
}

// timeout bounds one call to a collaborator (runc, shim, imaged, netd).
func timeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

const callTimeout = 2 * time.Minute

// savePod applies fn to the pod's record and persists it.
func (s *Service) savePod(p *sandbox, fn func(r *store.Pod)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	next := *p.rec
	fn(&next)
	if err := s.Store.PutPod(&next); err != nil {
		return err
	}
	*p.rec = next
	return nil
}

// saveContainer applies fn to the container's record and persists it; fn
// may refuse by returning an error (e.g. an invalid transition).
func (s *Service) saveContainer(c *container, fn func(r *store.Container) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	next := *c.rec
	if err := fn(&next); err != nil {
		return err
	}
	if err := s.Store.PutContainer(&next); err != nil {
		return err
	}
	*c.rec = next
	return nil
}

func newSandbox(rec *store.Pod, cfg *runtimeapi.PodSandboxConfig) *sandbox {
	return &sandbox{id: rec.ID, dir: rec.Dir, rec: rec, cfg: cfg}
}

func newContainer(rec *store.Container, cfg *runtimeapi.ContainerConfig, sh Shim) *container {
	return &container{id: rec.ID, podID: rec.PodID, bundle: rec.Bundle, infra: rec.Infra, created: rec.CreatedAt,
		rec: rec, cfg: cfg, shim: sh, exit: make(chan struct{})}
}
