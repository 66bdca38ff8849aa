package netns

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
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

// No thread of the process may stay in a namespace Create made: the
// namespace would outlive Remove, and with it every veth still inside. The Go
// runtime cannot end the main thread, so a locked goroutine that ends there
// leaves that thread parked in whatever namespace it had.
func TestCreateLeavesNoThreadInTheNamespace(t *testing.T) {
	dir := t.TempDir()
	inodes := map[uint64]string{}
	for i := range 200 {
		p := filepath.Join(dir, "netns", fmt.Sprint("pod", i))
		if err := Create(p); err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		inodes[st.Ino] = p
		if err := Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	tasks, err := filepath.Glob("/proc/self/task/*/ns/net")
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads listed: %v", err)
	}
	for _, task := range tasks {
		var st unix.Stat_t
		if err := unix.Stat(task, &st); err != nil {
			continue // the thread ended meanwhile
		}
		if p, ok := inodes[st.Ino]; ok {
			t.Errorf("thread %s is still in the namespace pinned at %s", task, p)
		}
	}
}
