// Package layout names the files a flotilla-shim keeps in its state
// directory and encodes the exit file. It is shared by the shim and its
// client, so both sides agree on one definition.
package layout

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Files in a shim's state directory (created by the client, mode 0700).
const (
	// SocketFile is the control socket (mode 0600, proto/shim/PROTOCOL.md).
	SocketFile = "shim.sock"
	// AttachSocketFile serves the container's own stdio (mode 0600).
	AttachSocketFile = "attach.sock"
	// PidFile holds the shim's pid.
	PidFile = "shim.pid"
	// ContainerPidFile holds the container init's host pid (written by the runtime).
	ContainerPidFile = "container.pid"
	// ExitFile holds the container's exit (see Exit), written atomically.
	ExitFile = "exit"
	// ConsoleSocketFile is where the runtime sends a pty master (--console-socket).
	ConsoleSocketFile = "console.sock"
	// RuntimeFile holds the runtime binary, root and container id for the
	// client's own runtime calls (JSON, written by the client).
	RuntimeFile = "runtime.json"
	// ShimLogFile is the shim's own log (slog text, errors only by default).
	ShimLogFile = "shim.log"
)

// Exit is what the shim records when the container's init exits.
type Exit struct {
	Code      int32
	ExitedAt  time.Time
	OOMKilled bool
}

// Encode renders e as one line: "<code> <unix-nanos> <oom 0|1>\n".
func (e Exit) Encode() []byte {
	oom := 0
	if e.OOMKilled {
		oom = 1
	}
	return fmt.Appendf(nil, "%d %d %d\n", e.Code, e.ExitedAt.UnixNano(), oom)
}

// DecodeExit parses what Encode wrote.
func DecodeExit(b []byte) (Exit, error) {
	f := strings.Fields(string(bytes.TrimSpace(b)))
	if len(f) != 3 {
		return Exit{}, fmt.Errorf("malformed exit file %q", b)
	}
	code, err1 := strconv.ParseInt(f[0], 10, 32)
	ns, err2 := strconv.ParseInt(f[1], 10, 64)
	oom, err3 := strconv.Atoi(f[2])
	if err := errors.Join(err1, err2, err3); err != nil {
		return Exit{}, fmt.Errorf("malformed exit file %q: %w", b, err)
	}
	return Exit{Code: int32(code), ExitedAt: time.Unix(0, ns).UTC(), OOMKilled: oom != 0}, nil
}

// WriteFileAtomic writes data to dir/name through a temp file and a rename,
// so a reader sees either nothing or the whole file. It does not fsync: the
// state dir is runtime state (a reader after a crash of the writer, not of
// the machine, is what it serves).
func WriteFileAtomic(dir, name string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(dir, "."+name+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, name))
}
