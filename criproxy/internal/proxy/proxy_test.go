package proxy

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"flotilla.dev/criproxy/internal/backend"
	"flotilla.dev/lib/bus"
	"flotilla.dev/lib/daemon"
	eventsv1 "flotilla.dev/proto/events/v1"
	netv1 "flotilla.dev/proto/net/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeRuntime is a real gRPC RuntimeService backend answering a few calls.
type fakeRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	name  string
	ready bool
}

func (f *fakeRuntime) ListPodSandbox(context.Context, *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	return &runtimeapi.ListPodSandboxResponse{Items: []*runtimeapi.PodSandbox{{Id: "pod-from-" + f.name}}}, nil
}

func (f *fakeRuntime) PodSandboxStatus(_ context.Context, r *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	return nil, status.Errorf(codes.NotFound, "pod sandbox %q not found", r.PodSandboxId)
}

func (f *fakeRuntime) Status(context.Context, *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	return &runtimeapi.StatusResponse{
		Status:          &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{{Type: runtimeapi.RuntimeReady, Status: f.ready}}},
		RuntimeHandlers: []*runtimeapi.RuntimeHandler{{Name: "runc"}},
	}, nil
}

func (f *fakeRuntime) StreamPodSandboxes(_ *runtimeapi.StreamPodSandboxesRequest, s grpc.ServerStreamingServer[runtimeapi.StreamPodSandboxesResponse]) error {
	for i := 0; i < 3; i++ {
		if err := s.Send(&runtimeapi.StreamPodSandboxesResponse{PodSandboxes: []*runtimeapi.PodSandbox{{Id: f.name}}}); err != nil {
			return err
		}
	}
	return nil
}

type fakeNet struct {
	netv1.UnimplementedNetServiceServer
	ready bool
}

func (f *fakeNet) Status(context.Context, *netv1.StatusRequest) (*netv1.StatusResponse, error) {
	if f.ready {
		return &netv1.StatusResponse{Ready: true, Network: "test-net"}, nil
	}
	return &netv1.StatusResponse{Reason: "NoCNIConfig", Message: "no network config in /x"}, nil
}

func serve(t testing.TB, sock string, register func(*grpc.Server)) *daemon.Server {
	t.Helper()
	s, err := daemon.NewServer(sock, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	register(s.GRPC)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s
}

type fixture struct {
	dir     string
	proxy   *Proxy
	runtime runtimeapi.RuntimeServiceClient
	images  runtimeapi.ImageServiceClient
	bus     *bus.Mem
}

// start runs a criproxy over the given backend sockets (they may or may
// not be served) and returns clients on its CRI socket.
func start(t testing.TB, dir string, imaged, sandboxd, netd []string) *fixture {
	t.Helper()
	pool := func(name string, socks []string) *backend.Pool {
		p, err := backend.Dial(name, socks, quiet)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return p
	}
	mem := bus.NewMem("test")
	px := &Proxy{Imaged: pool("imaged", imaged), Sandboxd: pool("sandboxd", sandboxd), Netd: pool("netd", netd),
		Bus: mem, StatusTimeout: 2 * time.Second, Log: quiet}
	sock := filepath.Join(dir, "cri.sock")
	lis, err := daemon.ListenUnix(sock, 0o660)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(px.ServerOptions()...)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &fixture{dir: dir, proxy: px, runtime: runtimeapi.NewRuntimeServiceClient(conn), images: runtimeapi.NewImageServiceClient(conn), bus: mem}
}

func sockets(dir string, names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, filepath.Join(dir, n+".sock"))
	}
	return out
}

func TestForwardsToBackendAndKeepsErrors(t *testing.T) {
	dir := t.TempDir()
	sb := sockets(dir, "sandboxd")
	serve(t, sb[0], func(s *grpc.Server) { runtimeapi.RegisterRuntimeServiceServer(s, &fakeRuntime{name: "a", ready: true}) })
	f := start(t, dir, sockets(dir, "imaged"), sb, sockets(dir, "netd"))
	ctx := context.Background()

	resp, err := f.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Items) != 1 || resp.Items[0].Id != "pod-from-a" {
		t.Fatalf("unexpected response %v", resp)
	}
	// The backend's own error reaches the client unchanged.
	_, err = f.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: "nope"})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("want NotFound naming the pod, got %v", err)
	}
	// What the backend does not implement stays Unimplemented.
	_, err = f.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: "x"})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("want Unimplemented, got %v", err)
	}
}

func TestForwardsServerStreams(t *testing.T) {
	dir := t.TempDir()
	sb := sockets(dir, "sandboxd")
	serve(t, sb[0], func(s *grpc.Server) { runtimeapi.RegisterRuntimeServiceServer(s, &fakeRuntime{name: "a"}) })
	f := start(t, dir, sockets(dir, "imaged"), sb, sockets(dir, "netd"))
	stream, err := f.runtime.StreamPodSandboxes(context.Background(), &runtimeapi.StreamPodSandboxesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 3 {
		t.Fatalf("got %d messages, want 3", n)
	}
}

func TestBackendDownIsUnavailableNamingIt(t *testing.T) {
	dir := t.TempDir()
	f := start(t, dir, sockets(dir, "imaged"), sockets(dir, "sandboxd"), sockets(dir, "netd"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := f.images.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("want Unavailable, got %v", err)
	}
	if !strings.Contains(status.Convert(err).Message(), "imaged") {
		t.Fatalf("error does not name imaged: %v", err)
	}
}

func TestFailoverToHealthyReplica(t *testing.T) {
	dir := t.TempDir()
	socks := sockets(dir, "sandboxd-0", "sandboxd-1")
	serve(t, socks[1], func(s *grpc.Server) { runtimeapi.RegisterRuntimeServiceServer(s, &fakeRuntime{name: "b"}) })
	f := start(t, dir, sockets(dir, "imaged"), socks, sockets(dir, "netd"))
	for i := 0; i < 4; i++ { // whichever replica the rotation starts with
		resp, err := f.runtime.ListPodSandbox(context.Background(), &runtimeapi.ListPodSandboxRequest{})
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if resp.Items[0].Id != "pod-from-b" {
			t.Fatalf("call %d answered by %s", i, resp.Items[0].Id)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() { f.proxy.Sandboxd.Watch(ctx, 50*time.Millisecond); close(watched) }()
	defer func() { cancel(); <-watched }()
	r := f.proxy.Sandboxd.Replicas()
	for deadline := time.Now().Add(2 * time.Second); r[0].Healthy() || !r[1].Healthy(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("health: replica0=%v replica1=%v", r[0].Healthy(), r[1].Healthy())
		}
	}
}

func TestStatusMergesConditions(t *testing.T) {
	dir := t.TempDir()
	sb, nd := sockets(dir, "sandboxd"), sockets(dir, "netd")
	serve(t, sb[0], func(s *grpc.Server) { runtimeapi.RegisterRuntimeServiceServer(s, &fakeRuntime{ready: true}) })
	fn := &fakeNet{}
	serve(t, nd[0], func(s *grpc.Server) { netv1.RegisterNetServiceServer(s, fn) })
	f := start(t, dir, sockets(dir, "imaged"), sb, nd)

	cond := func(resp *runtimeapi.StatusResponse, typ string) *runtimeapi.RuntimeCondition {
		for _, c := range resp.GetStatus().GetConditions() {
			if c.Type == typ {
				return c
			}
		}
		t.Fatalf("no %s condition in %v", typ, resp)
		return nil
	}
	resp, err := f.runtime.Status(context.Background(), &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if !cond(resp, runtimeapi.RuntimeReady).Status {
		t.Fatal("RuntimeReady false")
	}
	if c := cond(resp, runtimeapi.NetworkReady); c.Status || c.Reason != "NoCNIConfig" {
		t.Fatalf("NetworkReady: %v", c)
	}
	if len(resp.RuntimeHandlers) != 1 || !strings.Contains(resp.Info["backends"], "sandboxd") {
		t.Fatalf("handlers/info not passed on: %v", resp)
	}
	fn.ready = true
	resp, err = f.runtime.Status(context.Background(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !cond(resp, runtimeapi.NetworkReady).Status {
		t.Fatal("NetworkReady false after netd became ready")
	}
}

func TestStatusWithBackendsDown(t *testing.T) {
	dir := t.TempDir()
	f := start(t, dir, sockets(dir, "imaged"), sockets(dir, "sandboxd"), sockets(dir, "netd"))
	resp, err := f.runtime.Status(context.Background(), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range resp.Status.Conditions {
		if c.Status || c.Reason != ReasonBackendUnavailable {
			t.Fatalf("condition %v", c)
		}
	}
	msgs := resp.Status.Conditions[0].Message + resp.Status.Conditions[1].Message
	if !strings.Contains(msgs, "sandboxd") || !strings.Contains(msgs, "netd") {
		t.Fatalf("messages do not name the backends: %q", msgs)
	}
}

func TestVersion(t *testing.T) {
	dir := t.TempDir()
	f := start(t, dir, sockets(dir, "imaged"), sockets(dir, "sandboxd"), sockets(dir, "netd"))
	v, err := f.runtime.Version(context.Background(), &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if v.RuntimeName != "flotilla" || v.RuntimeApiVersion != "v1" {
		t.Fatalf("version %v", v)
	}
}

func TestContainerEventsFromBus(t *testing.T) {
	dir := t.TempDir()
	f := start(t, dir, sockets(dir, "imaged"), sockets(dir, "sandboxd"), sockets(dir, "netd"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := f.runtime.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil { // subscribed once headers arrive
		t.Fatal(err)
	}
	want := &runtimeapi.ContainerEventResponse{ContainerId: "c1", ContainerEventType: runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT, CreatedAt: 42}
	data, _ := proto.Marshal(want)
	f.bus.Publish(eventsv1.SubjectContainerStarted, &eventsv1.Envelope{Payload: &eventsv1.Envelope_Container{
		Container: &eventsv1.ContainerEvent{ContainerId: "c1", State: "started", CriEvent: data}}})
	got, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
}

// BenchmarkForwardUnary is one unary CRI call through criproxy to a
// backend on unix sockets; BenchmarkDirectUnary the same call straight to
// the backend. The difference is what the hop costs.
func BenchmarkForwardUnary(b *testing.B) {
	dir := b.TempDir()
	sb := sockets(dir, "sandboxd")
	serve(b, sb[0], func(s *grpc.Server) { runtimeapi.RegisterRuntimeServiceServer(s, &fakeRuntime{name: "a"}) })
	f := start(b, dir, sockets(dir, "imaged"), sb, sockets(dir, "netd"))
	benchList(b, f.runtime)
}

func BenchmarkDirectUnary(b *testing.B) {
	dir := b.TempDir()
	sb := sockets(dir, "sandboxd")
	serve(b, sb[0], func(s *grpc.Server) { runtimeapi.RegisterRuntimeServiceServer(s, &fakeRuntime{name: "a"}) })
	conn, err := grpc.NewClient("unix://"+sb[0], grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	benchList(b, runtimeapi.NewRuntimeServiceClient(conn))
}

func benchList(b *testing.B, c runtimeapi.RuntimeServiceClient) {
	ctx := context.Background()
	if _, err := c.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := c.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err != nil {
			b.Fatal(err)
		}
	}
}
