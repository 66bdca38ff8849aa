package daemon

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"flotilla.dev/lib/version"
	daemonv1 "flotilla.dev/proto/daemon/v1"
)

var startedAt = time.Now()

type infoServer struct {
	daemonv1.UnimplementedDaemonServiceServer
	socket string
}

func (s *infoServer) Info(context.Context, *daemonv1.InfoRequest) (*daemonv1.InfoResponse, error) {
	return &daemonv1.InfoResponse{
		Name:      filepath.Base(os.Args[0]),
		Version:   version.Version,
		Pid:       int32(os.Getpid()),
		StartedAt: startedAt.UnixNano(),
		Socket:    s.socket,
	}, nil
}
