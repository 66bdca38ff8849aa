package client

import (
	"context"
	"fmt"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// conn is the transport behind Client (filled in by the next commits).
type conn struct{}

var errTODO = fmt.Errorf("shim client: %w", errdefs.ErrNotImplemented)

func spawn(ctx context.Context, opts SpawnOptions) (*Client, error)       { return nil, errTODO }
func connect(ctx context.Context, stateDir string) (*Client, error)       { return nil, errTODO }
func readExitFile(stateDir string) (Exit, error)                          { return Exit{}, errTODO }
func readShimPid(stateDir string) (int, error)                            { return 0, errTODO }
func (c *conn) close() error                                              { return nil }
func (c *conn) state(ctx context.Context) (State, error)                  { return State{}, errTODO }
func (c *conn) start(ctx context.Context) (int, error)                    { return 0, errTODO }
func (c *conn) wait(ctx context.Context, execID string) (Exit, error)     { return Exit{}, errTODO }
func (c *conn) reopenLog(ctx context.Context) error                       { return errTODO }
func (c *conn) delete(ctx context.Context) error                          { return errTODO }
func (c *conn) shutdown(ctx context.Context) error                        { return errTODO }
func (c *conn) attach(ctx context.Context, s Streams) error               { return errTODO }
func (c *conn) resize(ctx context.Context, execID string, s Size) error   { return errTODO }
func (c *conn) update(ctx context.Context, r *specs.LinuxResources) error { return errTODO }
func (c *conn) kill(ctx context.Context, execID string, sig syscall.Signal, all bool) error {
	return errTODO
}
func (c *conn) execSync(ctx context.Context, p *specs.Process, t time.Duration) (ExecSyncResult, error) {
	return ExecSyncResult{}, errTODO
}
func (c *conn) exec(ctx context.Context, o ExecOptions, s Streams) (Exit, error) {
	return Exit{}, errTODO
}
