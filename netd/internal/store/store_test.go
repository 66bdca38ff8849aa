package store

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/errdefs"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestRecordsSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.Put(&Record{PodID: "p1", Phase: Creating, NetNS: "/run/x"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(&Record{PodID: "p1", Phase: Ready, NetNS: "/run/x", IPs: []string{"10.0.0.2"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(&Record{PodID: "p2", Phase: Ready}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("p2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("p2"); err != nil {
		t.Fatal("delete of an absent record:", err)
	}
	check := func(s *Store, when string) {
		t.Helper()
		r, err := s.Get("p1")
		if err != nil || r.Phase != Ready || len(r.IPs) != 1 || r.IPs[0] != "10.0.0.2" {
			t.Fatalf("%s: record %+v, %v", when, r, err)
		}
		if _, err := s.Get("p2"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("%s: deleted p2: %v", when, err)
		}
		if recs, errs := s.List(); len(recs) != 1 || len(errs) != 0 {
			t.Fatalf("%s: list %+v, %v", when, recs, errs)
		}
	}
	check(s, "before reopen")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(open(t, dir), "after reopen")
	if ents, _ := os.ReadDir(dir); len(ents) != 1 || ents[0].Name() != "records.db" {
		t.Fatalf("store dir holds %v, want records.db only", ents)
	}
}

// A write that cannot be committed fails and leaves the store as it was.
func TestFailedWriteChangesNothing(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.Put(&Record{PodID: "p1", Phase: Ready}); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if err := s.Put(&Record{PodID: "p1", Phase: Creating}); err == nil {
		t.Fatal("Put into a closed store succeeded")
	}
	if err := s.Put(&Record{PodID: "p2", Phase: Creating}); err == nil {
		t.Fatal("Put into a closed store succeeded")
	}
	if err := s.Delete("p1"); err == nil {
		t.Fatal("Delete from a closed store succeeded")
	}
	if r, err := s.Get("p1"); err != nil || r.Phase != Ready {
		t.Fatalf("p1 after failed writes: %+v, %v", r, err)
	}
	if _, err := s.Get("p2"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("p2 after failed Put: %v", err)
	}
}

// Records of the layout before records.db (one JSON file per pod) are moved
// into it; an unreadable one is reported by List, not dropped.
func TestOpenImportsRecordFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"p1.json":          `{"pod_id":"p1","phase":"ready","netns":"/run/n/p1","ips":["10.0.0.9"]}`,
		"p2.json":          `{"pod_id":"p2","phase":"creating"}`,
		"bad.json":         `{"pod_id":`,
		".tmp-p3-12345":    `{"pod_id":"p3"`,
		"not-a-record.txt": `x`,
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := open(t, dir)
	recs, errs := s.List()
	if len(recs) != 2 || recs[0].PodID != "p1" || recs[0].IPs[0] != "10.0.0.9" || recs[1].Phase != Creating {
		t.Fatalf("records %+v", recs)
	}
	if len(errs) != 1 {
		t.Fatalf("errors %v, want bad's", errs)
	}
	for _, n := range []string{"p1.json", "p2.json", "bad.json", ".tmp-p3-12345"} {
		if _, err := os.Stat(filepath.Join(dir, n)); !os.IsNotExist(err) {
			t.Errorf("%s still there after import: %v", n, err)
		}
	}
	if err := s.Delete("bad"); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	if recs, errs := open(t, dir).List(); len(recs) != 2 || len(errs) != 0 {
		t.Fatalf("after reopen: %+v, %v", recs, errs)
	}
}
