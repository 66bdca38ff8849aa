package client

import (
	"context"
	"time"
)

// SpawnOptions says which container a new shim supervises.
type SpawnOptions struct {
	// ID is the container id given to the runtime. Required.
	ID string
	// Bundle is the absolute path of the OCI bundle (config.json already
	// written). Required.
	Bundle string
	// StateDir is an absolute directory for the shim's socket, pid and exit
	// files; created (0700) when missing. One shim per StateDir. Required.
	StateDir string
	// Runtime is the OCI runtime binary (default "runc", looked up in PATH).
	Runtime string
	// RuntimeRoot is passed as the runtime's --root (default: its own).
	RuntimeRoot string
	// LogPath is the container's CRI log file ("" discards the output).
	LogPath string
	// Terminal gives the container a pty (the spec's process.terminal must
	// agree).
	Terminal bool
	// Stdin keeps the container's stdin open for Attach.
	Stdin bool
	// StdinOnce closes the container's stdin after the first Attach ends.
	StdinOnce bool
	// Timeout bounds starting the shim and `runtime create` (default 1m);
	// ctx's deadline applies too.
	Timeout time.Duration
	// ShimBinary is the flotilla-shim executable (default: "flotilla-shim"
	// next to the current executable, then in PATH).
	ShimBinary string
	// LogLineSize is the longest log line written as one entry; longer lines
	// are split into partial (P) entries (default 16 KiB).
	LogLineSize int
	// RuntimeExecSync runs every ExecSync through `runtime exec`. Default:
	// when the runtime is runc and the container needs nothing the fast path
	// lacks, the shim binary runs the command itself (`flotilla-shim exec`,
	// proto/shim/PROTOCOL.md), 3-5 ms instead of runc's 15-20.
	RuntimeExecSync bool
	// RuntimeStart runs `runtime start` for Start. Default: when the runtime
	// is runc, the shim does what `runc start` does itself (reads runc's exec
	// fifo, proto/shim/PROTOCOL.md), which saves starting a runc process.
	RuntimeStart bool
}

// Spawn starts a detached shim (its own session, reparented away from the
// caller) which runs `runtime create`. It returns once the container is
// created, or an error with the runtime's error text; on error the shim
// has exited.
func Spawn(ctx context.Context, opts SpawnOptions) (*Client, error) { return spawn(ctx, opts) }
