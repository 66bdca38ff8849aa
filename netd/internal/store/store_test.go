package store

import (
	"os"
	"testing"
)

func TestPutThenSyncIsVisibleBeforeItsSync(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(&Record{PodID: "p1", Phase: Creating, NetNS: "/run/x"}); err != nil {
		t.Fatal(err)
	}
	sync, err := s.PutThenSync(&Record{PodID: "p1", Phase: Ready, NetNS: "/run/x", IPs: []string{"10.0.0.2"}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		r, err := s.Get("p1")
		if err != nil || r.Phase != Ready || len(r.IPs) != 1 || r.IPs[0] != "10.0.0.2" {
			t.Fatalf("%s: record %+v, %v", when, r, err)
		}
		ents, _ := os.ReadDir(s.dir)
		if len(ents) != 1 || ents[0].Name() != "p1.json" {
			t.Fatalf("%s: store holds %v, want p1.json only", when, ents)
		}
	}
	check("before sync")
	if err := sync(); err != nil {
		t.Fatal(err)
	}
	check("after sync")
	if err := sync(); err == nil {
		t.Error("a second sync of the same write succeeded; want the closed file's error")
	}
}

func TestPutThenSyncFailsWithoutDirectory(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(s.dir); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutThenSync(&Record{PodID: "p2", Phase: Ready}); err == nil {
		t.Fatal("PutThenSync into a removed directory succeeded")
	}
}
