// Package runtime runs an OCI runtime binary (runc and its command line
// siblings) for one container. Every call has a deadline; errors carry the
// runtime's own message (from its JSON log).
package runtime

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"flotilla.dev/shim/internal/reaper"
)

// Runtime is an OCI runtime binary bound to one container.
type Runtime struct {
	Binary   string // absolute path
	Root     string // --root, "" for the runtime's default
	ID       string // container id
	StateDir string // where per-call log files go
	Reaper   *reaper.Reaper

	seq atomic.Uint64
}

// Stdio are the fds given to the runtime process (nil: /dev/null).
type Stdio struct {
	In, Out, Err *os.File
}

// Run runs `runtime <global flags> args...` and waits for it. On failure
// the error holds the runtime's logged error message.
func (r *Runtime) Run(ctx context.Context, stdio Stdio, args ...string) error {
	logFile := filepath.Join(r.StateDir, fmt.Sprintf("runtime-%d.log", r.seq.Add(1)))
	defer os.Remove(logFile)
	argv := []string{r.Binary, "--log", logFile, "--log-format", "json"}
	if r.Root != "" {
		argv = append(argv, "--root", r.Root)
	}
	argv = append(argv, args...)

	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer null.Close()
	files := []*os.File{stdio.In, stdio.Out, stdio.Err}
	for i, f := range files {
		if f == nil {
			files[i] = null
		}
	}
	pid, exited, err := r.Reaper.Start(argv, r.StateDir, files)
	if err != nil {
		return err
	}
	select {
	case e := <-exited:
		if e.Code == 0 {
			return nil
		}
		msg := lastError(logFile)
		if msg == "" {
			msg = fmt.Sprintf("exit status %d", e.Code)
		}
		return fmt.Errorf("%s %s: %s", filepath.Base(r.Binary), args[0], msg)
	case <-ctx.Done():
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-exited
		return fmt.Errorf("%s %s: %w", filepath.Base(r.Binary), args[0], ctx.Err())
	}
}

// lastError returns the last error-level message of a runtime JSON log.
func lastError(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var msg string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &e) == nil && (e.Level == "error" || e.Level == "fatal") {
			msg = e.Msg
		}
	}
	return msg
}

// IsNotExist reports whether err says the runtime does not know the
// container.
func IsNotExist(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "does not exist") ||
		strings.Contains(err.Error(), "not exist"))
}

// ReadPid reads a pid file written by the runtime.
func ReadPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, errors.Join(fmt.Errorf("bad pid file %s: %q", path, data), err)
	}
	return pid, nil
}
