// Package names reserves pod and container names with the kubelet's retry
// semantics: a create that times out on the kubelet side is retried with
// the same request; the retry waits for the first create and gets its
// result instead of "name is reserved".
//
// Invariants: a name maps to at most one entry; an entry is either in
// flight (done open) or settled (done closed, id set). A failed create
// removes its entry before closing done, so waiters see the error and a
// later create may take the name.
package names

import (
	"context"
	"fmt"
	"sync"

	"github.com/containerd/errdefs"
)

// Registry holds reserved names.
type Registry struct {
	mu sync.Mutex
	m  map[string]*entry
}

type entry struct {
	key     string
	id      string
	waiters int // guarded by Registry.mu; for tests
	err     error
	done    chan struct{}
}

// New returns an empty registry.
func New() *Registry { return &Registry{m: map[string]*entry{}} }

// Reservation is held by the create that owns a name while it runs.
type Reservation struct {
	r    *Registry
	name string
	e    *entry
}

// Reserve claims name for a create identified by key (a digest of the
// request). It returns either a Reservation, which the caller must settle
// with Done, or the id of an earlier create of the same request (after
// waiting for it). A different request for a taken name is AlreadyExists.
func (r *Registry) Reserve(ctx context.Context, name, key string) (*Reservation, string, error) {
	r.mu.Lock()
	e, ok := r.m[name]
	if !ok {
		e = &entry{key: key, done: make(chan struct{})}
		r.m[name] = e
		r.mu.Unlock()
		return &Reservation{r: r, name: name, e: e}, "", nil
	}
	if e.key != key {
		r.mu.Unlock()
		return nil, "", fmt.Errorf("name %q is reserved for %s: %w", name, e.idOrInFlight(), errdefs.ErrAlreadyExists)
	}
	e.waiters++
	r.mu.Unlock()
	select {
	case <-e.done:
	case <-ctx.Done():
		return nil, "", fmt.Errorf("wait for the create of %q in flight: %w", name, ctx.Err())
	}
	if e.err != nil {
		return nil, "", e.err
	}
	return nil, e.id, nil
}

func (e *entry) idOrInFlight() string {
	select {
	case <-e.done:
		return e.id
	default:
		return "a create in flight"
	}
}

// Done settles the reservation: with err == nil the name stays bound to
// id; otherwise it is released and waiters get err.
func (res *Reservation) Done(id string, err error) {
	res.r.mu.Lock()
	if err != nil {
		if res.r.m[res.name] == res.e {
			delete(res.r.m, res.name)
		}
	}
	res.e.id, res.e.err = id, err
	res.r.mu.Unlock()
	close(res.e.done)
}

// Bind records an existing name → id (records loaded after a restart).
func (r *Registry) Bind(name, key, id string) {
	e := &entry{key: key, id: id, done: make(chan struct{})}
	close(e.done)
	r.mu.Lock()
	r.m[name] = e
	r.mu.Unlock()
}

// Release frees name if it is bound to id.
func (r *Registry) Release(name, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.m[name]; ok && e.id == id {
		select {
		case <-e.done:
			delete(r.m, name)
		default:
		}
	}
}

func (r *Registry) waiting(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.m[name]; ok {
		return e.waiters
	}
	return 0
}
