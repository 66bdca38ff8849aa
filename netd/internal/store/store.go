// Package store persists netd's pod network records, one JSON file per pod,
// written atomically (temp file, rename) and made durable with fsync: before
// the rename (Put), or after it, off the caller's path (PutThenSync).
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
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

// Store is a directory of records.
type Store struct{ dir string }

// Open creates dir if needed.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	return &Store{dir: dir}, nil
}

func (s *Store) path(id string) string { return filepath.Join(s.dir, id+".json") }

// Put writes r atomically and durably: it is on disk when Put returns.
func (s *Store) Put(r *Record) error {
	tmp, err := s.writeTemp(r)
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("sync record %s: %w", r.PodID, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write record %s: %w", r.PodID, err)
	}
	if err := os.Rename(tmp.Name(), s.path(r.PodID)); err != nil {
		return fmt.Errorf("write record %s: %w", r.PodID, err)
	}
	return nil
}

// PutThenSync writes r atomically, so a reader or a restarted netd sees it
// as soon as PutThenSync returns (the page cache outlives any process), and
// returns the fsync that makes it survive a power loss too, for the caller
// to run once its answer is out. Until that fsync is done a power loss may
// leave the previous version of the record (file systems that write a
// renamed-over file's data before the rename, as ext4 and btrfs do by
// default; on others the record may come back empty and List reports it
// unreadable); use it only where recovery does the same with either
// version.
func (s *Store) PutThenSync(r *Record) (sync func() error, err error) {
	tmp, err := s.writeTemp(r)
	if err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), s.path(r.PodID)); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return nil, fmt.Errorf("write record %s: %w", r.PodID, err)
	}
	return func() error {
		err := tmp.Sync()
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("sync record %s: %w", r.PodID, err)
		}
		return nil
	}, nil
}

// writeTemp writes r's encoding to a new temporary file in the store's
// directory and returns it open.
func (s *Store) writeTemp(r *Record) (*os.File, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode record %s: %w", r.PodID, err)
	}
	tmp, err := os.CreateTemp(s.dir, ".tmp-"+r.PodID+"-")
	if err != nil {
		return nil, fmt.Errorf("write record %s: %w", r.PodID, err)
	}
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
		return nil, fmt.Errorf("write record %s: %w", r.PodID, err)
	}
	return tmp, nil
}

// Get reads the record of id (errdefs.ErrNotFound if none).
func (s *Store) Get(id string) (*Record, error) {
	b, err := os.ReadFile(s.path(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("pod network %s: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read record %s: %w", id, err)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode record %s: %w", id, err)
	}
	return &r, nil
}

// Delete removes the record of id; a missing record is not an error.
func (s *Store) Delete(id string) error {
	if err := os.Remove(s.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete record %s: %w", id, err)
	}
	return nil
}

// List returns every record, sorted by pod id. Unreadable records are
// returned as errors alongside the readable ones.
func (s *Store) List() ([]*Record, []error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, []error{fmt.Errorf("list records: %w", err)}
	}
	var out []*Record
	var errs []error
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".tmp-") {
			_ = os.Remove(filepath.Join(s.dir, n)) // interrupted write
			continue
		}
		if !strings.HasSuffix(n, ".json") {
			continue
		}
		r, err := s.Get(strings.TrimSuffix(n, ".json"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PodID < out[j].PodID })
	return out, errs
}
