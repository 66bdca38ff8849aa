package store

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/containerd/errdefs"

	"flotilla.dev/lib/boltstore"
)

var (
	bucketPods       = []byte("pods")
	bucketContainers = []byte("containers")
)

// Store persists records in one bbolt file (lib/boltstore). A Put or
// Delete returns once its transaction is committed (fsynced), so a record
// survives SIGKILL and power loss; concurrent writes share commits.
type Store struct {
	db *boltstore.DB
}

// Open opens (creating) <dir>/records.db.
func Open(dir string) (*Store, error) {
	db, err := boltstore.Open(filepath.Join(dir, "records.db"), bucketPods, bucketContainers)
	if err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) put(bucket []byte, id string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.db.Put(bucket, id, data)
}

func (s *Store) del(bucket []byte, id string) error { return s.db.Delete(bucket, id) }

func list[T any](s *Store, bucket []byte) ([]*T, error) {
	var out []*T
	err := s.db.ForEach(bucket, func(k, v []byte) error {
		t := new(T)
		if err := json.Unmarshal(v, t); err != nil {
			return fmt.Errorf("record %s: %w", k, err)
		}
		out = append(out, t)
		return nil
	})
	return out, err
}

// PutPod writes a pod record.
func (s *Store) PutPod(p *Pod) error {
	if err := s.put(bucketPods, p.ID, p); err != nil {
		return fmt.Errorf("save pod %s: %w", p.ID, err)
	}
	return nil
}

// DeletePod removes a pod record (absent is fine).
func (s *Store) DeletePod(id string) error { return s.del(bucketPods, id) }

// Pods lists every pod record.
func (s *Store) Pods() ([]*Pod, error) { return list[Pod](s, bucketPods) }

// PutContainer writes a container record.
func (s *Store) PutContainer(c *Container) error {
	if err := s.put(bucketContainers, c.ID, c); err != nil {
		return fmt.Errorf("save container %s: %w", c.ID, err)
	}
	return nil
}

// DeleteContainer removes a container record (absent is fine).
func (s *Store) DeleteContainer(id string) error { return s.del(bucketContainers, id) }

// Containers lists every container record.
func (s *Store) Containers() ([]*Container, error) { return list[Container](s, bucketContainers) }

// ErrNotFound is returned for unknown ids.
var ErrNotFound = errdefs.ErrNotFound
