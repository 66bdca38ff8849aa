package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"flotilla.dev/lib/timerslack"
)

// runtimeCmd runs the OCI runtime binary (runc and its command-line
// siblings) for one container from the client's process: kill, delete,
// update and exec. The shim runs create and start itself.
type runtimeCmd struct {
	binary string // absolute path
	root   string // --root, "" for the runtime's default
	id     string
	dir    string // the shim's state dir: per-call log files go there
}

var logSeq atomic.Uint64

// stdio of one runtime call; nil members are /dev/null.
type stdio struct {
	in         *os.File
	outW, errW io.Writer
	cancel     func()        // called when ctx ends, before the runtime is killed
	started    func(pid int) // called once the runtime runs
	// process: the runtime runs a process (exec) whose exit status is the
	// result, so only a logged runtime error fails the call, and the call
	// has no default deadline (an interactive exec may last for hours).
	process bool
}

// defaultCallTimeout bounds a runtime call when the caller set no deadline.
const defaultCallTimeout = time.Minute

// run runs `runtime --log <f> --log-format json [--root R] args...`, waits
// for it and, when it fails, returns the runtime's own logged error.
func (r runtimeCmd) run(ctx context.Context, sio *stdio, args ...string) error {
	_, err := r.runStatus(ctx, sio, args...)
	return err
}

// runStatus is run that also returns the runtime's exit status.
func (r runtimeCmd) runStatus(ctx context.Context, sio *stdio, args ...string) (int, error) {
	if _, ok := ctx.Deadline(); !ok && (sio == nil || !sio.process) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultCallTimeout)
		defer cancel()
	}
	logFile := filepath.Join(r.dir, fmt.Sprintf("client-runtime-%d-%d.log", os.Getpid(), logSeq.Add(1)))
	defer os.Remove(logFile)
	argv := []string{"--log", logFile, "--log-format", "json"}
	if r.root != "" {
		argv = append(argv, "--root", r.root)
	}
	cmd := exec.CommandContext(ctx, r.binary, append(argv, args...)...)
	sc := sealedFor(r.binary)
	if sc != nil {
		// argv[0] stays the binary's path; /proc/self/fd/N resolves in
		// the child before its close-on-exec fds are closed.
		cmd.Path = fmt.Sprintf("/proc/self/fd/%d", sc.Fd())
	}
	cmd.Dir = r.dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second // a background child may keep an output pipe open
	var stderr bytes.Buffer
	cmd.Stderr = &limited{b: &stderr, n: 4096}
	if sio != nil {
		if sio.in != nil {
			cmd.Stdin = sio.in
		}
		if sio.outW != nil {
			cmd.Stdout = sio.outW
		}
		if sio.errW != nil {
			cmd.Stderr = sio.errW
		}
		if sio.cancel != nil {
			cmd.Cancel = func() error { sio.cancel(); return cmd.Process.Kill() }
		}
	}
	err := timerslack.Start(cmd) // what runc starts may be a container's process
	if sc != nil {
		sealedMu.RUnlock()
	}
	if err != nil {
		return -1, fmt.Errorf("%s %s: %w", filepath.Base(r.binary), args[0], err)
	}
	if sio != nil && sio.started != nil {
		sio.started(cmd.Process.Pid)
	}
	err = cmd.Wait()
	status := cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		status = 128 + int(ws.Signal())
	}
	msg := lastError(logFile)
	if ctx.Err() != nil {
		return status, fmt.Errorf("%s %s: %w", filepath.Base(r.binary), args[0], ctx.Err())
	}
	if sio != nil && sio.process {
		if msg != "" {
			return status, fmt.Errorf("%s %s: %s", filepath.Base(r.binary), args[0], msg)
		}
		return status, nil
	}
	if err == nil {
		return 0, nil
	}
	if msg == "" {
		msg = strings.TrimSpace(stderr.String())
	}
	if msg == "" {
		msg = err.Error()
	}
	return status, fmt.Errorf("%s %s: %s", filepath.Base(r.binary), args[0], msg)
}

// limited keeps the first n bytes written.
type limited struct {
	b *bytes.Buffer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
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

// isNotExist reports whether err says the runtime does not know the
// container.
func isNotExist(err error) bool {
	return err != nil && strings.Contains(err.Error(), "not exist")
}
