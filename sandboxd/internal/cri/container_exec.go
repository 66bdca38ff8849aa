package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	flog "flotilla.dev/lib/log"
	"flotilla.dev/lib/metrics"
	"flotilla.dev/sandboxd/internal/store"
	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ExecSync runs a command in a running container and returns its output;
// the timeout kills it.
func (s *Service) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if len(req.GetCmd()) == 0 {
		return nil, fmt.Errorf("exec: cmd is empty: %w", errdefs.ErrInvalidArgument)
	}
	if req.GetTimeout() < 0 {
		return nil, fmt.Errorf("exec: timeout %d is negative: %w", req.GetTimeout(), errdefs.ErrInvalidArgument)
	}
	c, err := s.lookupContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	ph := metrics.StartPhases("exec_sync")
	defer ph.Done(flog.From(ctx).With(flog.KeyContainerID, c.id))
	proc, err := s.execProcess(c, req.GetCmd(), false)
	if err != nil {
		return nil, err
	}
	ph.Mark("process")
	t := time.Duration(req.GetTimeout()) * time.Second
	res, err := c.shim.ExecSync(ctx, proc, t)
	if res.Fast {
		ph.Mark("shim_exec") // flotilla-shim ran it
	} else {
		ph.Mark("runtime_exec")
	}
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.id, err)
	}
	if res.TimedOut {
		return nil, fmt.Errorf("exec in container %s: command %v timed out after %v: %w", c.id, req.GetCmd(), t, context.DeadlineExceeded)
	}
	return &runtimeapi.ExecSyncResponse{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode}, nil
}

// execProcess derives an exec'd process from the container's own: same
// user, environment, working directory, capabilities.
func (s *Service) execProcess(c *container, cmd []string, tty bool) (*specs.Process, error) {
	snap := c.snapshot()
	if snap.State != store.ContainerRunning || c.shim == nil {
		return nil, fmt.Errorf("container %s is %s, not running: %w", snap.ID, snap.State, errdefs.ErrFailedPrecondition)
	}
	data, err := os.ReadFile(filepath.Join(snap.Bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("read spec of container %s: %w", snap.ID, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		return nil, fmt.Errorf("read spec of container %s: %w", snap.ID, err)
	}
	p := spec.Process
	p.Args, p.Terminal, p.ConsoleSize = cmd, tty, nil
	p.OOMScoreAdj = nil
	return p, nil
}
