package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Sealed runtime copies.
//
// runc before 1.2 defends against CVE-2019-5736 at the start of every
// `runc init` (every container create and every `runc exec`): it makes a
// read-only bind mount of its own binary in its state directory (three
// mount calls on the host's mount table) and re-executes itself from it,
// or, where it cannot mount, copies the binary (≈ 9 MB) into a memfd. It
// does neither when the binary it runs from is already a sealed memfd,
// which is how runc's own contrib/cmd/memfd-bind shares one copy: up to
// 2.5 ms less per `runc create` (0 to 2.5 in three measurements, see
// docs/performance.md). SealRuntime makes that one copy in this process;
// the runtime calls this process makes and the shims it spawns from then
// on exec the runtime from it. runc 1.2 and later protect themselves with
// a read-only overlay mount instead and are left alone, as is any other
// runtime.

// memfdSeals are the seals runc checks for (RUNC_MEMFD_SEALS).
const memfdSeals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

type sealedCopy struct {
	f    *os.File
	from fileID // the binary it was copied from
}

// fileID tells whether a binary was replaced (a package upgrade writes a
// new file) or rewritten since it was copied.
type fileID struct {
	dev, ino     uint64
	size         int64
	mtime, ctime unix.Timespec
}

func statID(path string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim}, nil
}

var (
	// sealedMu: readers hold it from looking a copy up until the process
	// that execs it has started, so a copy being replaced is not closed
	// (and its fd number reused) under them.
	sealedMu sync.RWMutex
	sealed   = map[string]*sealedCopy{} // by absolute runtime path
)

// SealRuntime makes one sealed in-memory copy of the runtime binary (a name
// looked up in PATH or an absolute path) when it is a runc older than 1.2,
// for the rest of this process's life: its size in bytes, or 0 and the
// reason when no copy is needed. A copy whose binary is later replaced is
// made again on the next use.
func SealRuntime(runtime string) (int64, string, error) {
	path, err := absRuntime(runtime)
	if err != nil {
		return 0, "", err
	}
	sealedMu.Lock()
	defer sealedMu.Unlock()
	return sealLocked(path)
}

// absRuntime is the runtime's absolute path: as given, or looked up in PATH
// (Spawn resolves it the same way, so a sealed copy is found by that path).
func absRuntime(runtime string) (string, error) {
	if filepath.IsAbs(runtime) {
		return runtime, nil
	}
	p, err := exec.LookPath(runtime)
	if err != nil {
		return "", fmt.Errorf("runtime %q: %w", runtime, err)
	}
	return p, nil
}

func sealLocked(path string) (int64, string, error) {
	if old := sealed[path]; old != nil {
		delete(sealed, path)
		old.f.Close()
	}
	id, err := statID(path)
	if err != nil {
		return 0, "", err
	}
	if isSealedMemfd(path) {
		return 0, "it already is a sealed memfd (memfd-bind)", nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return 0, "", fmt.Errorf("%s --version: %w", path, err)
	}
	if ok, why := copiesItself(string(out)); !ok {
		return 0, why, nil
	}
	f, err := sealedMemfd(path, id)
	if err != nil {
		return 0, "", err
	}
	sealed[path] = &sealedCopy{f: f, from: id}
	return id.size, "", nil
}

// copiesItself tells from `runtime --version` whether the runtime is a runc
// that copies its binary in every `runc init` (1.0 and 1.1).
func copiesItself(version string) (bool, string) {
	first, _, _ := strings.Cut(version, "\n")
	v, ok := strings.CutPrefix(strings.TrimSpace(first), "runc version ")
	if !ok {
		return false, "not runc"
	}
	majS, rest, _ := strings.Cut(v, ".")
	minS, _, _ := strings.Cut(rest, ".")
	maj, err1 := strconv.Atoi(majS)
	min, err2 := strconv.Atoi(minS)
	if err1 != nil || err2 != nil {
		return false, fmt.Sprintf("unknown runc version %q", v)
	}
	if maj > 1 || maj == 1 && min >= 2 {
		return false, "runc " + v + " protects its binary without a copy"
	}
	return true, ""
}

func isSealedMemfd(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	return err == nil && seals&memfdSeals == memfdSeals
}

// sealedMemfd copies the binary at path (whose identity was id) into a new
// memfd and seals it.
func sealedMemfd(path string, id fileID) (*os.File, error) {
	fd, err := unix.MemfdCreate("flotilla-sealed:"+filepath.Base(path), unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("sealed copy of %s: memfd_create: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), "sealed:"+path)
	err = func() error {
		src, err := os.Open(path)
		if err != nil {
			return err
		}
		defer src.Close()
		n, err := io.Copy(f, src)
		if err != nil {
			return err
		}
		if after, err := statID(path); err != nil || after != id || n != id.size {
			return errors.New("the binary changed while it was copied")
		}
		if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, memfdSeals); err != nil {
			return fmt.Errorf("seal: %w", err)
		}
		return nil
	}()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("sealed copy of %s: %w", path, err)
	}
	return f, nil
}

// sealedFor returns the sealed copy of the runtime at path with sealedMu
// read-locked (the caller unlocks it once the process using the copy has
// started), or nil (nothing locked) when there is none. A copy whose binary
// was replaced is made again first; if that fails the binary itself is used.
func sealedFor(path string) *os.File {
	sealedMu.RLock()
	c := sealed[path]
	if c == nil {
		sealedMu.RUnlock()
		return nil
	}
	if id, err := statID(path); err == nil && id == c.from {
		return c.f
	}
	sealedMu.RUnlock()
	sealedMu.Lock()
	if c := sealed[path]; c != nil {
		if id, err := statID(path); err != nil || id != c.from {
			sealLocked(path) // on failure the entry is gone: the binary is used
		}
	}
	sealedMu.Unlock()
	sealedMu.RLock()
	if c := sealed[path]; c != nil {
		return c.f
	}
	sealedMu.RUnlock()
	return nil
}
