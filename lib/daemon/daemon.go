// Package daemon holds what every Flotilla daemon does the same way: signal
// handling, root-only unix sockets, serving gRPC and telling systemd it is
// ready.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
)

// SignalContext is cancelled on SIGINT or SIGTERM.
func SignalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// ListenUnix listens on a unix socket with the given mode, replacing a stale
// socket file. The directory is created 0700 if missing.
func ListenUnix(path string, mode os.FileMode) (net.Listener, error) {
	if path == "" {
		return nil, errors.New("listen: empty socket path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen %s: exists and is not a socket", path)
		}
		// A live daemon holding it would answer; a stale file would not.
		if c, err := net.Dial("unix", path); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen %s: another process is serving this socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("listen %s: remove stale socket: %w", path, err)
		}
	}
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		l.Close()
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	return l, nil
}

// NotifyReady tells systemd (Type=notify) that the daemon is ready. It does
// nothing when NOTIFY_SOCKET is unset.
//
// First it returns what the daemon's start left unused to the OS: the garbage
// of every package's initialisation (this executable holds all four daemons),
// the configuration and the recovery. Go would otherwise keep it mapped as
// heap the daemon may grow into; an idle fleet held 1.1-1.5 MiB more
// (docs/performance.md, "Idle memory and the page cache").
func NotifyReady() error {
	debug.FreeOSMemory()
	return notify("READY=1")
}

// NotifyStopping tells systemd the daemon is stopping.
func NotifyStopping() error { return notify("STOPPING=1") }

func notify(state string) error {
	sock := os.Getenv("NOTIFY_SOCKET")
	if sock == "" {
		return nil
	}
	addr := &net.UnixAddr{Name: sock, Net: "unixgram"}
	if sock[0] == '@' {
		addr.Name = "\x00" + sock[1:]
	}
	c, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}
