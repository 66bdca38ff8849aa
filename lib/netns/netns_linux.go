// Package netns creates, pins (bind mounts) and removes network namespaces.
package netns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Create makes a new network namespace with its loopback up and pins it by
// bind-mounting it on path (created). It fails if path already exists.
func Create(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return fmt.Errorf("netns dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("netns pin file: %w", err)
	}
	_ = f.Close()
	errc := make(chan error, 1)
	go func() {
		// The thread switches to the new namespace and back. Ending it
		// instead (returning while locked) is not enough: the runtime
		// cannot end the main thread and parks it for good, in the new
		// namespace, which then outlives Remove along with any veth left
		// in it. A thread that cannot switch back stays locked and ends.
		runtime.LockOSThread()
		errc <- unshareAndPin(path)
	}()
	if err := <-errc; err != nil {
		_ = Remove(path)
		return err
	}
	return nil
}

// unshareAndPin runs on a locked thread: it moves the thread to a new
// namespace, pins it, and unlocks the thread only once it is back in its
// own namespace.
func unshareAndPin(path string) error {
	self := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
	orig, err := os.Open(self)
	if err != nil {
		return fmt.Errorf("open the thread's netns: %w", err)
	}
	defer orig.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare netns: %w", err)
	}
	err = pin(path, self)
	if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
		runtime.UnlockOSThread()
	}
	return err
}

func pin(path, self string) error {
	if err := unix.Mount(self, path, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("pin netns on %s: %w", path, err)
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("netns loopback: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("netns loopback up: %w", err)
	}
	return nil
}

// Remove unpins the namespace at path and deletes the file. A path that is
// already gone is not an error.
func Remove(path string) error {
	for {
		err := unix.Unmount(path, unix.MNT_DETACH)
		if err == nil {
			continue // stacked mounts: unmount until none is left
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			break
		}
		return fmt.Errorf("unpin netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns pin %s: %w", path, err)
	}
	return nil
}

// IsPinned reports whether path is a mounted network namespace.
func IsPinned(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}
