package netns

import (
	"path/filepath"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

func TestCreatePinRemove(t *testing.T) {
	p := filepath.Join(t.TempDir(), "netns", "pod1")
	if err := Create(p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = Remove(p) })
	if !IsPinned(p) {
		t.Fatal("namespace not pinned")
	}
	if err := Create(p); err == nil {
		t.Fatal("second Create on the same path succeeded")
	}
	h, err := ns.GetNS(p)
	if err != nil {
		t.Fatal(err)
	}
	var links []netlink.Link
	err = h.Do(func(ns.NetNS) error {
		var err error
		links, err = netlink.LinkList()
		return err
	})
	_ = h.Close()
	if err != nil {
		t.Fatal(err)
	}
	if len(links) != 1 || links[0].Attrs().Name != "lo" || links[0].Attrs().Flags&1 == 0 {
		t.Fatalf("new namespace should hold only lo, up: %v", links)
	}
	if err := Remove(p); err != nil {
		t.Fatal(err)
	}
	if IsPinned(p) {
		t.Fatal("still pinned after Remove")
	}
	if err := Remove(p); err != nil {
		t.Fatalf("Remove of a gone namespace: %v", err)
	}
}
