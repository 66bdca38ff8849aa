package metrics

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestServeExportsRequests(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := Serve(ctx, addr, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	Observe("/runtime.v1.RuntimeService/Version", "OK", 3*time.Millisecond)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := `flotilla_grpc_requests_total{code="OK",method="/runtime.v1.RuntimeService/Version"} 1`
	if !strings.Contains(string(body), want) {
		t.Fatalf("metrics lack %q:\n%.2000s", want, body)
	}
}
