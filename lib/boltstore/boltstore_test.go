package boltstore

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
)

var bucket = []byte("records")

func open(t *testing.T, path string) *DB {
	t.Helper()
	d, err := Open(path, bucket)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func keys(t *testing.T, d *DB) map[string]string {
	t.Helper()
	m := map[string]string{}
	if err := d.ForEach(bucket, func(k, v []byte) error { m[string(k)] = string(v); return nil }); err != nil {
		t.Fatal(err)
	}
	return m
}

// Concurrent writes share commits and every one of them is on disk.
func TestConcurrentWritesShareCommits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "records.db")
	d := open(t, path)
	const n = 64
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = d.Put(bucket, fmt.Sprintf("c%02d", i), []byte("v"))
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	if c := d.Commits(); c >= n {
		t.Errorf("%d writes took %d commits: none was shared", n, c)
	} else {
		t.Logf("%d writes, %d commits", n, c)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = open(t, path)
	defer d.Close()
	if m := keys(t, d); len(m) != n {
		t.Fatalf("after reopen: %d records, want %d", len(m), n)
	}
}

// A bad write in a shared commit fails only its own caller.
func TestBadWriteFailsOnlyItself(t *testing.T) {
	d := open(t, filepath.Join(t.TempDir(), "records.db"))
	defer d.Close()
	good := &write{bucket: bucket, key: []byte("p1"), val: []byte("v"), err: make(chan error, 1)}
	bad := &write{bucket: bucket, key: nil, val: []byte("v"), err: make(chan error, 1)} // bbolt refuses an empty key
	d.apply([]*write{good, bad})
	if err := <-good.err; err != nil {
		t.Errorf("good write: %v", err)
	}
	if err := <-bad.err; err == nil {
		t.Error("write with an empty key succeeded")
	}
	if m := keys(t, d); len(m) != 1 || m["p1"] != "v" {
		t.Fatalf("records %v; want p1 only", m)
	}
}

func TestWriteAfterCloseFails(t *testing.T) {
	d := open(t, filepath.Join(t.TempDir(), "records.db"))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Put(bucket, "p1", []byte("v")); err == nil {
		t.Fatal("Put after Close succeeded")
	}
}
