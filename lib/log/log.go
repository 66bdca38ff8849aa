// Package log sets up log/slog for a daemon and provides the one gRPC
// interceptor every daemon installs: request id, logging, error mapping.
//
// Messages are constant; data goes in attributes with fixed keys (KeyPodID,
// KeyContainerID, KeyImage, ...).
package log

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Fixed attribute keys.
const (
	KeyDaemon      = "daemon"
	KeyPodID       = "pod_id"
	KeyContainerID = "container_id"
	KeyImage       = "image"
	KeyMethod      = "method"
	KeyRequestID   = "request_id"
	KeyError       = "error"
	KeyDuration    = "duration"
	KeyCode        = "code"
	KeySocket      = "socket"
	KeyBackend     = "backend"
)

// Options select level and format.
type Options struct {
	Level  string // debug, info, warn, error
	Format string // text or json
	Daemon string
	Output io.Writer
}

// ParseLevel parses a level name.
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
}

// New builds a logger and makes it the default.
func New(o Options) (*slog.Logger, error) {
	lvl, err := ParseLevel(o.Level)
	if err != nil {
		return nil, err
	}
	out := o.Output
	if out == nil {
		out = os.Stderr
	}
	hopts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	switch strings.ToLower(o.Format) {
	case "", "text":
		h = slog.NewTextHandler(out, hopts)
	case "json":
		h = slog.NewJSONHandler(out, hopts)
	default:
		return nil, fmt.Errorf("unknown log format %q (want text or json)", o.Format)
	}
	l := slog.New(h)
	if o.Daemon != "" {
		l = l.With(KeyDaemon, o.Daemon)
	}
	slog.SetDefault(l)
	return l, nil
}

type ctxKey struct{}

// WithLogger stores a logger in the context.
func WithLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, ctxKey{}, l)
}

// From returns the context's logger (with the request id) or the default.
func From(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(ctxKey{}).(*slog.Logger); ok {
		return l
	}
	return slog.Default()
}
