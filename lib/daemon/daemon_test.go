package daemon

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestListenUnixModeAndStaleSocket(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "d.sock")
	l, err := ListenUnix(p, 0o660)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Fatalf("mode %v, want 0660", fi.Mode().Perm())
	}
	// A live socket must not be stolen.
	if _, err := ListenUnix(p, 0o600); err == nil {
		t.Fatal("second listener on a live socket succeeded")
	}
	// Leave a stale socket file behind (no unlink on close) and listen again.
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	l2, err := ListenUnix(p, 0o600)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
}

func TestNotifyReady(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", p)
	if err := NotifyReady(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if string(buf[:n]) != "READY=1" {
		t.Fatalf("got %q", buf[:n])
	}
}
