package cri

import (
	"context"
	"syscall"
	"time"

	shimclient "flotilla.dev/shim/client"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Shim is what sandboxd asks of one container's flotilla-shim
// (*shimclient.Client implements it).
type Shim interface {
	State(ctx context.Context) (shimclient.State, error)
	Start(ctx context.Context) (int, error)
	Wait(ctx context.Context) (shimclient.Exit, error)
	Kill(ctx context.Context, sig syscall.Signal, all bool) error
	ExecSync(ctx context.Context, proc *specs.Process, timeout time.Duration) (shimclient.ExecSyncResult, error)
	Exec(ctx context.Context, opts shimclient.ExecOptions, streams shimclient.Streams) (shimclient.Exit, error)
	Attach(ctx context.Context, streams shimclient.Streams) error
	ResizePty(ctx context.Context, execID string, size shimclient.Size) error
	ReopenLog(ctx context.Context) error
	Update(ctx context.Context, res *specs.LinuxResources) error
	Delete(ctx context.Context) error
	Shutdown(ctx context.Context) error
	Close() error
}

// Shims spawns and reconnects shims.
type Shims interface {
	Spawn(ctx context.Context, opts shimclient.SpawnOptions) (Shim, error)
	Connect(ctx context.Context, stateDir string) (Shim, error)
	ReadExitFile(stateDir string) (shimclient.Exit, error)
}

// RealShims drives flotilla-shim processes through flotilla.dev/shim/client.
type RealShims struct {
	// Binary is the flotilla-shim executable ("" lets the client find it).
	Binary string
}

// Spawn implements Shims.
func (r RealShims) Spawn(ctx context.Context, opts shimclient.SpawnOptions) (Shim, error) {
	if opts.ShimBinary == "" {
		opts.ShimBinary = r.Binary
	}
	c, err := shimclient.Spawn(ctx, opts)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Connect implements Shims.
func (RealShims) Connect(ctx context.Context, stateDir string) (Shim, error) {
	c, err := shimclient.Connect(ctx, stateDir)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// ReadExitFile implements Shims.
func (RealShims) ReadExitFile(stateDir string) (shimclient.Exit, error) {
	return shimclient.ReadExitFile(stateDir)
}
