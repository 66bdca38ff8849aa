// Package server runs sandboxd: runtime.v1.RuntimeService (less what
// criproxy answers itself).
package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"flotilla.dev/lib/bus"
	"flotilla.dev/lib/daemon"
	flog "flotilla.dev/lib/log"
	"flotilla.dev/lib/version"
	eventsv1 "flotilla.dev/proto/events/v1"
	imagev1 "flotilla.dev/proto/image/v1"
	netv1 "flotilla.dev/proto/net/v1"
	"flotilla.dev/sandboxd/internal/config"
	"flotilla.dev/sandboxd/internal/cri"
	"flotilla.dev/sandboxd/internal/store"
	shimclient "flotilla.dev/shim/client"
	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// dialUnix connects to imaged or netd; calls made while the daemon is
// (re)starting wait briefly for it instead of failing on a stale error.
func dialUnix(path string) (*grpc.ClientConn, error) { return daemon.DialUnix(path) }

// Run serves sandboxd until ctx ends.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	for _, d := range []string{cfg.Root, cfg.RunRoot} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	st, err := store.Open(cfg.Root)
	if err != nil {
		return err
	}
	defer st.Close()
	b, err := bus.Connect(cfg.NATSURL, "sandboxd")
	if err != nil {
		return err
	}
	defer b.Close()
	imaged, err := dialUnix(cfg.ImagedSocket)
	if err != nil {
		return err
	}
	defer imaged.Close()
	netd, err := dialUnix(cfg.NetdSocket)
	if err != nil {
		return err
	}
	defer netd.Close()
	shimPath := cfg.ShimPath
	if shimPath == "" {
		if exe, err := os.Executable(); err == nil {
			if p := filepath.Join(filepath.Dir(exe), "flotilla-shim"); fileExists(p) {
				shimPath = p
			}
		}
	}
	sealRuntimes(cfg, log)
	svc, err := cri.New(ctx, cri.Deps{
		Config: cfg, Store: st, Bus: b, Log: log,
		Net: netv1.NewNetServiceClient(netd), Rootfs: imagev1.NewRootfsServiceClient(imaged),
		Images: runtimeapi.NewImageServiceClient(imaged),
		Shims:  cri.RealShims{Binary: shimPath},
	})
	if err != nil {
		return err
	}
	defer svc.Close()
	stream, err := svc.StartStreaming(cfg.StreamAddress)
	if err != nil {
		return err
	}
	defer stream.Stop()
	log.Info("streaming server listening", "address", stream.Addr)
	srv, err := daemon.NewServer(cfg.Socket, 0o600, flog.ServerOptions(log)...)
	if err != nil {
		return err
	}
	runtimeapi.RegisterRuntimeServiceServer(srv.GRPC, svc)
	b.Publish(eventsv1.SubjectSandboxdStarted, &eventsv1.Envelope{Payload: &eventsv1.Envelope_Daemon{
		Daemon: &eventsv1.DaemonEvent{Name: "sandboxd", Version: version.Version, Pid: int32(os.Getpid()), Socket: cfg.Socket}}})
	log.Info("serving", flog.KeySocket, cfg.Socket)
	return srv.Serve(ctx)
}

// sealRuntimes makes the sealed copy of every runc 1.0/1.1 runtime
// (shim/client.SealRuntime). A runtime it cannot copy runs from its binary,
// as it would without the copy.
func sealRuntimes(cfg *config.Config, log *slog.Logger) {
	for _, h := range cfg.Handlers() {
		rt, _ := cfg.Runtime(h)
		if rt.BinaryCopyPerCall {
			continue
		}
		size, why, err := shimclient.SealRuntime(rt.Path)
		switch {
		case err != nil:
			log.Warn("runtime runs without a sealed copy", "handler", h, "path", rt.Path, "err", err)
		case size > 0:
			log.Info("runtime runs from one sealed copy", "handler", h, "path", rt.Path, "bytes", size)
		default:
			log.Debug("runtime needs no sealed copy", "handler", h, "path", rt.Path, "reason", why)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
