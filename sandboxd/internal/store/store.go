package store

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketPods       = []byte("pods")
	bucketContainers = []byte("containers")
)

// Store persists records in one bbolt file. Every Put is a committed
// (fsynced) transaction, so a record survives SIGKILL.
type Store struct {
	db *bolt.DB
}

// Open opens (creating) <dir>/records.db.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, "records.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketPods, bucketContainers} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
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
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(id), data) })
}

func (s *Store) del(bucket []byte, id string) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete([]byte(id)) })
}

func list[T any](s *Store, bucket []byte) ([]*T, error) {
	var out []*T
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			t := new(T)
			if err := json.Unmarshal(v, t); err != nil {
				return fmt.Errorf("record %s: %w", k, err)
			}
			out = append(out, t)
			return nil
		})
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
