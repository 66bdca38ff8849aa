// Package client is the typed Go client sandboxd uses to drive
// flotilla-shim, one small C process per container (shim/c/, contract in
// proto/shim/PROTOCOL.md). The shim runs `runtime create` and `runtime start`,
// holds the container's stdio, writes the CRI log, serves attach and
// records the exit; this package runs the runtime itself for kill, delete,
// update and exec (as the caller's child).
//
// Life of a container through this package:
//
//	c, err := client.Spawn(ctx, client.SpawnOptions{ID: id, Bundle: b, StateDir: d, LogPath: l})
//	// the container is created (`runtime create` succeeded) or err carries the runtime's error text
//	pid, err := c.Start(ctx)
//	exit, err := c.Wait(ctx)          // blocks until the container's init exits
//	err = c.Delete(ctx)               // `runtime delete`
//	err = c.Shutdown(ctx)             // the shim exits; the exit file stays in StateDir
//
// The shim outlives the process that spawned it. After a sandboxd restart,
// Connect(ctx, stateDir) reconnects to a running shim; when the shim is gone,
// ReadExitFile(stateDir) gives the container's exit.
//
// Errors carry github.com/containerd/errdefs classes (test with errors.Is):
// ErrNotFound (no such exec, no exit file), ErrFailedPrecondition (wrong
// state: start twice, delete while running), ErrInvalidArgument (bad
// options), ErrUnavailable (shim not reachable). Runtime failures carry the
// runtime's own error text.
package client

import (
	"context"
	"io"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Status is the container's state as the shim knows it.
type Status int

const (
	StatusUnknown Status = iota
	StatusCreated
	StatusRunning
	StatusStopped
)

func (s Status) String() string {
	switch s {
	case StatusCreated:
		return "created"
	case StatusRunning:
		return "running"
	case StatusStopped:
		return "stopped"
	}
	return "unknown"
}

// State is the answer of Client.State.
type State struct {
	ID     string
	Pid    int // host pid of the container's init; 0 before create
	Status Status
	// StartedAt is zero until Start; Exit is set once Status is StatusStopped.
	StartedAt time.Time
	Exit      Exit
	// Message explains a failure (e.g. the runtime's error text).
	Message string
}

// Exit is how a process ended.
type Exit struct {
	Code      int32
	ExitedAt  time.Time
	OOMKilled bool // the container's memory cgroup saw an OOM kill
}

// Size is a terminal size in characters.
type Size struct {
	Width, Height uint16
}

// Streams connects a process's stdio to the caller during Attach or Exec.
// Nil members are not connected. Stdin EOF closes the process's stdin.
// Resize, when not nil, is read until closed and applied to the process's
// terminal (tty only).
type Streams struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer // unused with a tty: the terminal merges both streams
	Resize <-chan Size
}

// ExecOptions describes an interactive exec (Client.Exec).
type ExecOptions struct {
	// ID names the exec session inside this shim; unique while it runs.
	ID string
	// Process is the OCI process to run in the container. Process.Terminal
	// is set from Tty by the client.
	Process *specs.Process
	Tty     bool
	Stdin   bool
}

// ExecSyncResult is the answer of Client.ExecSync.
type ExecSyncResult struct {
	Stdout, Stderr []byte // each capped at 16 MiB
	ExitCode       int32
	TimedOut       bool // the timeout passed and the process was killed
	// Fast: the shim ran it (`flotilla-shim exec`), not `runtime exec`.
	Fast bool
}

// Client talks to one running shim over its control socket (a connection
// per request). It is safe for concurrent use. Close releases nothing the
// shim needs; the shim keeps running.
type Client struct {
	stateDir string
	impl     *conn
}

// StateDir is the shim's state directory (socket, pid, exit file).
func (c *Client) StateDir() string { return c.stateDir }

// Connect reconnects to the shim whose state directory is stateDir. It
// returns an ErrUnavailable-class error when no shim answers there (read the
// exit file with ReadExitFile then).
func Connect(ctx context.Context, stateDir string) (*Client, error) { return connect(ctx, stateDir) }

// ReadExitFile returns the exit the shim recorded in stateDir, or an
// ErrNotFound-class error when the container has not exited (or never ran).
func ReadExitFile(stateDir string) (Exit, error) { return readExitFile(stateDir) }

// ShimPid returns the pid of the shim process (from its pid file).
func (c *Client) ShimPid() (int, error) { return readShimPid(c.stateDir) }

// Close closes the connection to the shim; the shim keeps running.
func (c *Client) Close() error { return c.impl.close() }

// State returns the container's state.
func (c *Client) State(ctx context.Context) (State, error) { return c.impl.state(ctx) }

// Start runs `runtime start`; it returns the init's host pid.
// ErrFailedPrecondition when the container is not in the created state.
func (c *Client) Start(ctx context.Context) (int, error) { return c.impl.start(ctx) }

// Wait blocks until the container's init has exited (or ctx ends).
func (c *Client) Wait(ctx context.Context) (Exit, error) { return c.impl.wait(ctx, "") }

// WaitExec blocks until the exec session execID has exited.
func (c *Client) WaitExec(ctx context.Context, execID string) (Exit, error) {
	return c.impl.wait(ctx, execID)
}

// Kill sends sig to the container's init, or to all its processes when all
// is set. Killing a stopped container succeeds.
func (c *Client) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	return c.impl.kill(ctx, "", sig, all)
}

// KillExec sends sig to the exec session execID.
func (c *Client) KillExec(ctx context.Context, execID string, sig syscall.Signal) error {
	return c.impl.kill(ctx, execID, sig, false)
}

// ExecSync runs proc in the container, collects its output (16 MiB per
// stream at most) and returns when it exits. With timeout > 0 the process
// is killed when the timeout passes and TimedOut is set.
func (c *Client) ExecSync(ctx context.Context, proc *specs.Process, timeout time.Duration) (ExecSyncResult, error) {
	return c.impl.execSync(ctx, proc, timeout)
}

// Exec runs an interactive process in the container, connects it to
// streams, and returns its exit once it has exited and its output is
// copied. The exec's errors (e.g. executable not found) come back as err.
func (c *Client) Exec(ctx context.Context, opts ExecOptions, streams Streams) (Exit, error) {
	return c.impl.exec(ctx, opts, streams)
}

// Attach connects streams to the container's own stdio (stdin only when
// the container was spawned with Stdin). Output is what the container
// writes from now on (earlier output is in the log). Stdin EOF closes the
// container's stdin when it was spawned with StdinOnce (as does the end of
// the first attach); otherwise stdin stays open for the next attach.
// Attach returns nil when the container exits, ctx's error when ctx ends
// (the container keeps running), or an error when the shim goes away.
func (c *Client) Attach(ctx context.Context, streams Streams) error {
	return c.impl.attach(ctx, streams)
}

// ResizePty resizes the terminal of the container (execID "") or of an exec.
func (c *Client) ResizePty(ctx context.Context, execID string, size Size) error {
	return c.impl.resize(ctx, execID, size)
}

// ReopenLog closes and reopens the container's log file (after rotation).
func (c *Client) ReopenLog(ctx context.Context) error { return c.impl.reopenLog(ctx) }

// Update applies resources with `runtime update`.
func (c *Client) Update(ctx context.Context, res *specs.LinuxResources) error {
	return c.impl.update(ctx, res)
}

// Delete runs `runtime delete` on the created or stopped container; a
// stopped runc container that had its own PID namespace (and no poststop
// hook) is deleted as runc would, without a runc process (deleteStopped).
// Deleting a container the runtime no longer knows succeeds.
// ErrFailedPrecondition while it runs (Kill it first).
func (c *Client) Delete(ctx context.Context) error { return c.impl.delete(ctx) }

// Shutdown makes the shim exit. ErrFailedPrecondition while the container
// runs. The exit file stays in the state directory.
func (c *Client) Shutdown(ctx context.Context) error { return c.impl.shutdown(ctx) }
