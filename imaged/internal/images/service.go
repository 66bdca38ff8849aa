// Package images implements the CRI ImageService on containers/image and
// containers/storage: one file per RPC, the pull machinery in pull.go.
package images

import (
	"log/slog"
	"sync"
	"time"

	"flotilla.dev/lib/bus"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Options configure a Service.
type Options struct {
	Store storage.Store
	// System is the base SystemContext (paths set explicitly); pulls copy it.
	System *types.SystemContext
	// PolicyPath is the policy.json enforced on every pull.
	PolicyPath           string
	Bus                  bus.Bus
	Log                  *slog.Logger
	ProgressTimeout      time.Duration
	MaxParallelDownloads uint
}

// Service implements runtime.v1.ImageService.
type Service struct {
	runtimeapi.UnimplementedImageServiceServer
	o Options

	mu       sync.Mutex
	inflight map[string]*pullCall // coalesced pulls by resolved reference
	running  int                  // pulls in progress (GC only runs at zero)
	dirty    bool                 // a pull failed: collect its layers when idle

	// layers is held for reading while a container layer is being created
	// (its layer exists a moment before its container record does) and for
	// writing while unreferenced layers are collected.
	layers sync.RWMutex

	infoMu sync.Mutex
	info   map[string]imageStatic // Info's config and size by image id
}

// HoldLayers keeps layer collection away until the returned func is called.
func (s *Service) HoldLayers() func() {
	s.layers.RLock()
	return s.layers.RUnlock
}

// New returns a Service.
func New(o Options) *Service {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Bus == nil {
		o.Bus = bus.NewMem("imaged")
	}
	if o.ProgressTimeout <= 0 {
		o.ProgressTimeout = time.Minute
	}
	return &Service{o: o, inflight: map[string]*pullCall{}}
}
