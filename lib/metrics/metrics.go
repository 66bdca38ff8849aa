// Package metrics holds the Prometheus metrics every daemon exports and
// serves them (with pprof) on the daemon's metrics_address.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Registry is the process's metric registry.
var Registry = prometheus.NewRegistry()

var (
	// Requests counts gRPC requests by method and status code.
	Requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "flotilla_grpc_requests_total",
		Help: "gRPC requests served, by method and status code.",
	}, []string{"method", "code"})
	// Latency observes gRPC request durations by method.
	Latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "flotilla_grpc_request_duration_seconds",
		Help:    "gRPC request duration, by method.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"method"})
)

func init() {
	Registry.MustRegister(Requests, Latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Observe records one finished request.
func Observe(method, code string, d time.Duration) {
	Requests.WithLabelValues(method, code).Inc()
	Latency.WithLabelValues(method).Observe(d.Seconds())
}

// Handler serves /metrics and /debug/pprof/.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Serve serves Handler on addr (host:port) until ctx ends. It returns once
// listening, or the listen error.
func Serve(ctx context.Context, addr string, log *slog.Logger) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "error", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.Info("metrics serving", "address", lis.Addr().String())
	return nil
}
