package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sync"

	flog "flotilla.dev/lib/log"
	"flotilla.dev/sandboxd/internal/store"
	shimclient "flotilla.dev/shim/client"
	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// Streaming is the exec/attach/port-forward server (k8s.io/cri-streaming);
// its URLs carry single-use tokens.
type Streaming struct {
	srv  streaming.Server
	http *http.Server
	lis  net.Listener
	Addr string
}

// StartStreaming listens on addr (port 0 picks a free port) and serves the
// streaming endpoints until Stop.
func (s *Service) StartStreaming(addr string) (*Streaming, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = lis.Addr().String()
	cfg.BaseURL = &url.URL{Scheme: "http", Host: lis.Addr().String()}
	srv, err := streaming.NewServer(cfg, streamRuntime{s})
	if err != nil {
		lis.Close()
		return nil, err
	}
	st := &Streaming{srv: srv, http: &http.Server{Handler: srv}, lis: lis, Addr: lis.Addr().String()}
	go func() { _ = st.http.Serve(lis) }()
	s.streaming = st
	return st, nil
}

// Stop closes the streaming server.
func (st *Streaming) Stop() error { return st.http.Close() }

func (s *Service) streamingServer() (streaming.Server, error) {
	if s.streaming == nil {
		return nil, fmt.Errorf("the streaming server is not running: %w", errdefs.ErrUnavailable)
	}
	return s.streaming.srv, nil
}

// Exec returns a URL for an interactive exec in a running container.
func (s *Service) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	c, err := s.lookupContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if len(req.GetCmd()) == 0 {
		return nil, fmt.Errorf("exec: cmd is empty: %w", errdefs.ErrInvalidArgument)
	}
	if st := c.snapshot().State; st != store.ContainerRunning {
		return nil, fmt.Errorf("exec: container %s is %s, not running: %w", c.id, st, errdefs.ErrFailedPrecondition)
	}
	srv, err := s.streamingServer()
	if err != nil {
		return nil, err
	}
	req.ContainerId = c.id
	resp, err := srv.GetExec(req)
	if err != nil {
		return nil, fmt.Errorf("exec: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return resp, nil
}

// Attach returns a URL to attach to a running container's stdio.
func (s *Service) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	c, err := s.lookupContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if st := c.snapshot().State; st != store.ContainerRunning {
		return nil, fmt.Errorf("attach: container %s is %s, not running: %w", c.id, st, errdefs.ErrFailedPrecondition)
	}
	srv, err := s.streamingServer()
	if err != nil {
		return nil, err
	}
	req.ContainerId = c.id
	resp, err := srv.GetAttach(req)
	if err != nil {
		return nil, fmt.Errorf("attach: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return resp, nil
}

// PortForward returns a URL to forward ports into a ready pod's network.
func (s *Service) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	p, err := s.lookupPod(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if st := p.snapshot().State; st != store.PodReady {
		return nil, fmt.Errorf("port forward: pod sandbox %s is not ready: %w", p.id, errdefs.ErrFailedPrecondition)
	}
	srv, err := s.streamingServer()
	if err != nil {
		return nil, err
	}
	req.PodSandboxId = p.id
	resp, err := srv.GetPortForward(req)
	if err != nil {
		return nil, fmt.Errorf("port forward: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return resp, nil
}

// streamRuntime serves the streams the streaming server accepted.
type streamRuntime struct{ s *Service }

func resizes(in <-chan remotecommandserver.TerminalSize) <-chan shimclient.Size {
	if in == nil {
		return nil
	}
	out := make(chan shimclient.Size)
	go func() {
		defer close(out)
		for sz := range in {
			out <- shimclient.Size{Width: sz.Width, Height: sz.Height}
		}
	}()
	return out
}

func (r streamRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	c, err := r.s.lookupContainer(id)
	if err != nil {
		return err
	}
	proc, err := r.s.execProcess(c, cmd, tty)
	if err != nil {
		return err
	}
	streams := shimclient.Streams{Stdin: in, Resize: resizes(resize)}
	if out != nil {
		streams.Stdout = out
	}
	if errw != nil {
		streams.Stderr = errw
	}
	exit, err := c.shim.Exec(ctx, shimclient.ExecOptions{ID: newID()[:16], Process: proc, Tty: tty, Stdin: in != nil}, streams)
	if err != nil {
		return err
	}
	if exit.Code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", exit.Code), Code: int(exit.Code)}
	}
	return nil
}

func (r streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	c, err := r.s.lookupContainer(id)
	if err != nil {
		return err
	}
	if c.shim == nil {
		return fmt.Errorf("attach: shim of %s is gone: %w", id, errdefs.ErrUnavailable)
	}
	streams := shimclient.Streams{Stdin: in, Resize: resizes(resize)}
	if out != nil {
		streams.Stdout = out
	}
	if errw != nil {
		streams.Stderr = errw
	}
	return c.shim.Attach(ctx, streams)
}

func (r streamRuntime) PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	p, err := r.s.lookupPod(podID)
	if err != nil {
		return err
	}
	if port <= 0 || port > 65535 {
		return fmt.Errorf("port %d out of range: %w", port, errdefs.ErrInvalidArgument)
	}
	conn, err := dialInNetNS(p.snapshot().NetNS, port)
	if err != nil {
		return fmt.Errorf("port forward to %d in pod %s: %w", port, podID, err)
	}
	defer conn.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	_, err = io.Copy(stream, conn)
	stream.Close()
	wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		flog.From(ctx).Debug("port forward copy", flog.KeyPodID, podID, flog.KeyError, err)
	}
	return nil
}

// dialInNetNS connects to 127.0.0.1:port inside the network namespace at
// path (the host's when path is empty). The socket is created on a thread
// moved into the namespace and keeps it.
func dialInNetNS(path string, port int32) (net.Conn, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if path == "" {
		return net.Dial("tcp", addr)
	}
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{nil, err}
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{nil, fmt.Errorf("enter netns %s: %w", path, err)}
			return
		}
		c, err := net.Dial("tcp", addr)
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}
