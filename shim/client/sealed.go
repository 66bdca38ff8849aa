package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// A sealed in-memory copy of runc, which the shims run instead of the file.
//
// Against CVE-2019-5736 (a container overwriting the host's runc through
// /proc/self/exe) runc 1.0 and 1.1 copy their own executable for every
// `runc init`, that is for every create, run and exec: about 9 MB written to
// a memfd or a file in runc's state directory, then a second execve of the
// copy. runc skips the copy when it already runs from a memfd sealed against
// any change (F_SEAL_SEAL|SHRINK|GROW|WRITE, nothing more): such a file cannot
// be overwritten. That is what runc's own contrib/cmd/memfd-bind offers
// admins (bind-mounted over /usr/bin/runc); here the copy is handed to each
// shim as an inherited fd instead, and nothing on the host changes.
//
// One copy per runtime file: it is made again when the file changes (an
// upgrade replaces it), and a shim keeps the copy it was started with for
// its container's life, so it keeps talking to the runc that created it.

// sealedSeals are the seals runc checks for, exactly.
const sealedSeals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

type sealedCopies struct {
	mu sync.Mutex
	m  map[string]*sealedCopy
}

type sealedCopy struct {
	key   fileKey
	f     *os.File // nil: the file is not one runc skips copying for
	refs  int
	stale bool
}

// fileKey tells whether a path still names the file that was copied.
type fileKey struct {
	dev, ino     uint64
	size         int64
	mtime, ctime syscall.Timespec
}

func keyOf(fi os.FileInfo) fileKey {
	st := fi.Sys().(*syscall.Stat_t)
	return fileKey{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}
}

var runtimeCopies sealedCopies

// acquire returns the sealed copy of runtime (an absolute path), made on
// first use or when the file changed; nil when runtime is not runc (by name)
// or not an ELF executable (a wrapper script). release it after the shim
// has started.
func (s *sealedCopies) acquire(runtime string) (*sealedCopy, error) {
	if filepath.Base(runtime) != "runc" {
		return nil, nil
	}
	fi, err := os.Stat(runtime)
	if err != nil {
		return nil, err
	}
	key := keyOf(fi)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.m[runtime]
	if c == nil || c.key != key {
		f, err := sealRuntime(runtime, key)
		if err != nil {
			return nil, err
		}
		if c != nil {
			c.stale = true
			c.closeIfUnused()
		}
		c = &sealedCopy{key: key, f: f}
		if s.m == nil {
			s.m = map[string]*sealedCopy{}
		}
		s.m[runtime] = c
	}
	if c.f == nil {
		return nil, nil
	}
	c.refs++
	return c, nil
}

func (s *sealedCopies) release(c *sealedCopy) {
	if c == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c.refs--
	c.closeIfUnused()
}

func (c *sealedCopy) closeIfUnused() {
	if c.stale && c.refs == 0 && c.f != nil {
		c.f.Close()
		c.f = nil
	}
}

// sealRuntime copies the executable at path into a sealed memfd; nil, nil
// when it is not an ELF file.
func sealRuntime(path string, want fileKey) (*os.File, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(src, magic); err != nil || !bytes.Equal(magic, []byte("\x7fELF")) {
		return nil, nil
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	// MFD_EXEC: executable even where vm.memfd_noexec asks for sealed
	// non-executable memfds by default (kernels from 6.3; older ones reject
	// the flag and make every memfd executable).
	fd, err := unix.MemfdCreate(filepath.Base(path), unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING|unix.MFD_EXEC)
	if errors.Is(err, unix.EINVAL) {
		fd, err = unix.MemfdCreate(filepath.Base(path), unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	}
	if err != nil {
		return nil, fmt.Errorf("memfd for %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), "memfd:"+path)
	fail := func(err error) (*os.File, error) {
		f.Close()
		return nil, fmt.Errorf("sealed copy of %s: %w", path, err)
	}
	n, err := io.Copy(f, src)
	if err != nil {
		return fail(err)
	}
	// the file must not have changed under the copy
	if fi, err := src.Stat(); err != nil || keyOf(fi) != want || n != want.size {
		return fail(fmt.Errorf("changed while being copied"))
	}
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, sealedSeals); err != nil {
		return fail(err)
	}
	if got, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0); err != nil || got != sealedSeals {
		return fail(fmt.Errorf("seals are %#x, want %#x (%v)", got, sealedSeals, err))
	}
	return f, nil
}
