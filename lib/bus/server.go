package bus

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Embedded is a nats-server running inside a daemon (criproxy by default).
type Embedded struct {
	srv *server.Server
}

// StartEmbedded starts a NATS server listening on addr ("127.0.0.1:4222";
// port 0 picks a free one). It is ready when this returns.
func StartEmbedded(addr string) (*Embedded, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("nats listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("nats listen port %q: %w", portStr, err)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: "flotilla",
		Host:       host,
		Port:       port,
		NoSigs:     true,
		NoLog:      true,
		// No $SYS account: nothing here uses it, and it costs internal
		// subscriptions, goroutines and heap in an idle criproxy.
		NoSystemAccount: true,
		MaxPayload:      8 << 20,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(5 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats server on %s: not ready after 5s", addr)
	}
	return &Embedded{srv: srv}, nil
}

// ClientURL is the URL clients connect to.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Shutdown stops the server.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
