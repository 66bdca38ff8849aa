// Package nsutil pins Linux namespaces to files (bind mounts of nsfs), so a
// pod holds its IPC and UTS namespaces without a pause process.
package nsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Kind is a namespace type as named under /proc/<pid>/ns.
type Kind string

// Namespace kinds sandboxd pins.
const (
	IPC Kind = "ipc"
	UTS Kind = "uts"
	NET Kind = "net"
)

var flags = map[Kind]int{IPC: unix.CLONE_NEWIPC, UTS: unix.CLONE_NEWUTS, NET: unix.CLONE_NEWNET}

// Pin creates fresh namespaces of the given kinds and bind-mounts each to
// dir/<kind>ns. hostname is set in a new UTS namespace. On error nothing
// stays pinned.
func Pin(dir, hostname string, kinds ...Kind) (map[Kind]string, error) {
	if len(kinds) == 0 {
		return map[Kind]string{}, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pin namespaces: %w", err)
	}
	type result struct {
		paths map[Kind]string
		err   error
	}
	done := make(chan result, 1)
	go func() {
		// The thread moves back to its original namespaces before it is
		// unlocked; if that fails it stays locked and the Go runtime ends
		// it when this goroutine returns (or wedges it, if it is the main
		// thread: it never runs Go code again either way).
		runtime.LockOSThread()
		orig, err := openOwn(kinds)
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer closeAll(orig)
		paths, err := pinOnThread(dir, hostname, kinds)
		if restore(orig) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{paths, err}
	}()
	r := <-done
	return r.paths, r.err
}

func pinOnThread(dir, hostname string, kinds []Kind) (map[Kind]string, error) {
	var fl int
	for _, k := range kinds {
		f, ok := flags[k]
		if !ok {
			return nil, fmt.Errorf("pin namespaces: unknown kind %q", k)
		}
		fl |= f
	}
	if err := unix.Unshare(fl); err != nil {
		return nil, fmt.Errorf("unshare %v: %w", kinds, err)
	}
	for _, k := range kinds {
		if k == UTS && hostname != "" {
			if err := unix.Sethostname([]byte(hostname)); err != nil {
				return nil, fmt.Errorf("set hostname %q: %w", hostname, err)
			}
		}
	}
	paths := map[Kind]string{}
	for _, k := range kinds {
		target := filepath.Join(dir, string(k)+"ns")
		src := "/proc/thread-self/ns/" + string(k)
		err := bindFile(src, target)
		if err != nil {
			for _, p := range paths {
				_ = Unpin(p)
			}
			return nil, fmt.Errorf("pin %s namespace: %w", k, err)
		}
		paths[k] = target
	}
	return paths, nil
}

func bindFile(src, target string) error {
	f, err := os.OpenFile(target, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o400)
	if err != nil {
		return err
	}
	f.Close()
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		os.Remove(target)
		return fmt.Errorf("bind %s: %w", src, err)
	}
	return nil
}

// Unpin unmounts and removes a pinned namespace file; a missing one is fine.
func Unpin(path string) error {
	if path == "" {
		return nil
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unpin %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unpin %s: %w", path, err)
	}
	return nil
}

// IsPinned reports whether path is a live namespace of the given kind.
func IsPinned(path string, k Kind) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// MountShm mounts a tmpfs of size bytes at path for a pod's /dev/shm.
func MountShm(path string, size int64) error {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return fmt.Errorf("mount shm: %w", err)
	}
	opts := fmt.Sprintf("mode=1777,size=%d", size)
	if err := unix.Mount("shm", path, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return fmt.Errorf("mount shm at %s: %w", path, err)
	}
	return nil
}

// Unmount lazily unmounts path (absent or unmounted is fine).
func Unmount(path string) error {
	if path == "" {
		return nil
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	return nil
}

func openOwn(kinds []Kind) (map[Kind]int, error) {
	fds := map[Kind]int{}
	for _, k := range kinds {
		fd, err := unix.Open(fmt.Sprintf("/proc/thread-self/ns/%s", k), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			closeAll(fds)
			return nil, fmt.Errorf("open own %s namespace: %w", k, err)
		}
		fds[k] = fd
	}
	return fds, nil
}

func restore(fds map[Kind]int) error {
	for k, fd := range fds {
		if err := unix.Setns(fd, flags[k]); err != nil {
			return err
		}
	}
	return nil
}

func closeAll(fds map[Kind]int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
