package client

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func assertSealedCopyOf(t *testing.T, c *sealedCopy, path string) {
	t.Helper()
	if c == nil || c.f == nil {
		t.Fatalf("no sealed copy of %s", path)
	}
	if got, err := unix.FcntlInt(c.f.Fd(), unix.F_GET_SEALS, 0); err != nil || got != sealedSeals {
		t.Fatalf("seals %#x (%v), want %#x", got, err, sealedSeals)
	}
	want, _ := os.ReadFile(path)
	got, err := os.ReadFile("/proc/self/fd/" + strconv.Itoa(int(c.f.Fd())))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("copy differs from %s (%d vs %d bytes, %v)", path, len(got), len(want), err)
	}
	if _, err := c.f.Write([]byte("x")); err == nil {
		t.Fatal("the sealed copy took a write")
	}
}

// One sealed copy per runc file, made again when the file changes; the old
// one lives until its last user releases it. Other runtimes and wrapper
// scripts get none.
func TestSealedCopies(t *testing.T) {
	real, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	runc := filepath.Join(dir, "runc")
	copyFile(t, real, runc)
	var s sealedCopies

	c1, err := s.acquire(runc)
	if err != nil {
		t.Fatal(err)
	}
	assertSealedCopyOf(t, c1, runc)
	again, err := s.acquire(runc)
	if err != nil || again != c1 {
		t.Fatalf("second acquire of an unchanged file: %p %v, want the first copy %p", again, err, c1)
	}

	// an upgrade: the file changes
	future := time.Now().Add(time.Hour)
	if err := os.Chtimes(runc, future, future); err != nil {
		t.Fatal(err)
	}
	c2, err := s.acquire(runc)
	if err != nil {
		t.Fatal(err)
	}
	if c2 == c1 {
		t.Fatal("a changed file kept its old copy")
	}
	assertSealedCopyOf(t, c2, runc)
	s.release(c1)
	if c1.f == nil {
		t.Fatal("the old copy was closed while still in use")
	}
	s.release(c1)
	if c1.f != nil {
		t.Fatal("the old copy stayed open after its last user")
	}
	s.release(c2)
	if c2.f == nil {
		t.Fatal("the current copy was closed")
	}

	script := filepath.Join(t.TempDir(), "runc")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec "+real+" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "runsc")
	copyFile(t, real, other)
	for _, p := range []string{script, other} {
		if c, err := s.acquire(p); c != nil || err != nil {
			t.Errorf("%s: copy %v, err %v; want neither", p, c, err)
		}
	}
	if _, err := s.acquire(filepath.Join(dir, "missing", "runc")); err == nil {
		t.Error("a missing runtime gave no error")
	}
}
