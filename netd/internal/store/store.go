// Package store persists netd's pod network records in one bbolt file,
// <dir>/records.db (lib/boltstore), and serves reads from memory. A write
// returns once it is on disk. Callers serialize the writes of one pod.
package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/containerd/errdefs"

	"flotilla.dev/lib/boltstore"
)

// Phase of a pod network record.
type Phase string

const (
	// Creating: the namespace exists and CNI ADD may be running; a record
	// found in this phase at start-up is an interrupted setup.
	Creating Phase = "creating"
	// Ready: CNI ADD succeeded.
	Ready Phase = "ready"
)

// Record is what netd knows about one pod's network.
type Record struct {
	PodID     string   `json:"pod_id"`
	Name      string   `json:"name"`
	Namespace string   `json:"namespace"`
	UID       string   `json:"uid"`
	Phase     Phase    `json:"phase"`
	NetNS     string   `json:"netns"`
	IfName    string   `json:"if_name"`
	IPs       []string `json:"ips,omitempty"`
	Network   string   `json:"network"`
	// ConfList is the exact conflist used for ADD, so CHECK and DEL use the
	// same plugins even after the configuration changed.
	ConfList json.RawMessage `json:"conflist"`
	// Args and CapabilityArgs passed to ADD, reused for CHECK and DEL.
	Args           [][2]string    `json:"args,omitempty"`
	CapabilityArgs map[string]any `json:"capability_args,omitempty"`
}

var bucket = []byte("pods")

// Store holds the records: on disk in db, and in memory as last written.
type Store struct {
	db *boltstore.DB

	mu   sync.Mutex
	recs map[string][]byte // pod id -> JSON record
}

// Open opens (creating) <dir>/records.db and loads its records. Records of
// the layout before it, one <pod id>.json file per pod in dir, are moved
// into it.
func Open(dir string) (*Store, error) {
	db, err := boltstore.Open(filepath.Join(dir, "records.db"), bucket)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, recs: map[string][]byte{}}
	err = db.ForEach(bucket, func(k, v []byte) error {
		s.recs[string(k)] = bytes.Clone(v)
		return nil
	})
	if err == nil {
		err = s.importFiles(dir)
	}
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	return s, nil
}

// importFiles moves <pod id>.json records into the database, then removes
// them, and removes the temporary files of writes interrupted by a crash.
func (s *Store) importFiles(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		n, path := e.Name(), filepath.Join(dir, e.Name())
		switch {
		case strings.HasPrefix(n, ".tmp-"):
			_ = os.Remove(path)
		case strings.HasSuffix(n, ".json"):
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			id := strings.TrimSuffix(n, ".json")
			if err := s.db.Put(bucket, id, b); err != nil {
				return err
			}
			s.recs[id] = b
			if err := os.Remove(path); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close closes the database; writes after it fail.
func (s *Store) Close() error { return s.db.Close() }

// Put writes r and returns once it is on disk; reads see it from then on.
// On failure the store holds what it held before.
func (s *Store) Put(r *Record) error {
	b, err := encode(r)
	if err != nil {
		return err
	}
	if err := s.db.Put(bucket, r.PodID, b); err != nil {
		return fmt.Errorf("write record %s: %w", r.PodID, err)
	}
	s.mu.Lock()
	s.recs[r.PodID] = b
	s.mu.Unlock()
	return nil
}

func encode(r *Record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode record %s: %w", r.PodID, err)
	}
	return b, nil
}

// Get returns id's record, or an error wrapping errdefs.ErrNotFound.
func (s *Store) Get(id string) (*Record, error) {
	s.mu.Lock()
	b, ok := s.recs[id]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("pod network %s: %w", id, errdefs.ErrNotFound)
	}
	return decode(id, b)
}

func decode(id string, b []byte) (*Record, error) {
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode record %s: %w", id, err)
	}
	return &r, nil
}

// Delete removes id's record (absent is fine) and returns once that is on
// disk. On failure the store holds what it held before.
func (s *Store) Delete(id string) error {
	if err := s.db.Delete(bucket, id); err != nil {
		return fmt.Errorf("delete record %s: %w", id, err)
	}
	s.mu.Lock()
	delete(s.recs, id)
	s.mu.Unlock()
	return nil
}

// List returns every record, sorted by pod id. Unreadable records are
// returned as errors alongside the readable ones.
func (s *Store) List() ([]*Record, []error) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.recs))
	for id := range s.recs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	bs := make([][]byte, len(ids))
	for i, id := range ids {
		bs[i] = s.recs[id]
	}
	s.mu.Unlock()
	var out []*Record
	var errs []error
	for i, id := range ids {
		r, err := decode(id, bs[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	return out, errs
}
