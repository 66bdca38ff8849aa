package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketPods       = []byte("pods")
	bucketContainers = []byte("containers")
)

// Store persists records in one bbolt file. A Put or Delete returns once
// its transaction is committed (fsynced), so a record survives SIGKILL and
// power loss. Writes that arrive while a commit is running are committed
// together in the next one (group commit): concurrent pod starts share
// fsyncs instead of queueing for one each.
type Store struct {
	db *bolt.DB

	mu      sync.Mutex
	pending []*write // waiting for the next commit
	leader  bool     // a caller is committing on behalf of the others
	commits int      // transactions run by Put and Delete, for tests
}

// write is one Put (val != nil) or Delete waiting for its commit.
type write struct {
	bucket []byte
	key    []byte
	val    []byte
	err    chan error
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
	return s.commit(&write{bucket: bucket, key: []byte(id), val: data})
}

func (s *Store) del(bucket []byte, id string) error {
	return s.commit(&write{bucket: bucket, key: []byte(id)})
}

// errLead tells a queued writer that it is now the leader.
var errLead = errors.New("lead the next commit")

// commit queues w and returns when a transaction holding it is committed.
// The first caller to find no commit running becomes the leader: it
// commits everything queued so far, then hands the lead to the first
// writer queued meanwhile, which does the same, until the queue is empty.
func (s *Store) commit(w *write) error {
	w.err = make(chan error, 1)
	s.mu.Lock()
	s.pending = append(s.pending, w)
	if s.leader {
		s.mu.Unlock()
		if err := <-w.err; err != errLead {
			return err
		}
		s.mu.Lock()
	}
	s.leader = true
	batch := s.pending
	s.pending = nil
	s.mu.Unlock()
	s.apply(batch) // holds w
	s.mu.Lock()
	if len(s.pending) > 0 {
		s.pending[0].err <- errLead
	} else {
		s.leader = false
	}
	s.mu.Unlock()
	return <-w.err
}

// apply commits batch in one transaction. If that fails and it holds more
// than one write, each is committed alone, so one bad write fails only its
// own caller.
func (s *Store) apply(batch []*write) {
	err := s.update(batch)
	if err == nil || len(batch) == 1 {
		for _, w := range batch {
			w.err <- err
		}
		return
	}
	for _, w := range batch {
		w.err <- s.update([]*write{w})
	}
}

func (s *Store) update(batch []*write) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, w := range batch {
			b := tx.Bucket(w.bucket)
			var err error
			if w.val != nil {
				err = b.Put(w.key, w.val)
			} else {
				err = b.Delete(w.key)
			}
			if err != nil {
				return fmt.Errorf("%s %q: %w", w.bucket, w.key, err)
			}
		}
		return nil
	})
	s.mu.Lock()
	s.commits++
	s.mu.Unlock()
	return err
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
