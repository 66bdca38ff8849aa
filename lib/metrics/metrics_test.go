package metrics

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runs makes each run's method name new, as the counters are global
// (go test -count=N runs the test N times in one process).
var runs int

func TestServeExportsRequests(t *testing.T) {
	runs++
	method := "/runtime.v1.RuntimeService/Version" + strconv.Itoa(runs)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := Serve(ctx, addr, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		t.Fatal(err)
	}
	Observe(method, "OK", 3*time.Millisecond)
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	want := `flotilla_grpc_requests_total{code="OK",method="` + method + `"} 1`
	if !strings.Contains(string(body), want) {
		t.Fatalf("metrics lack %q:\n%.2000s", want, body)
	}
}
