// Package bus publishes and subscribes Flotilla events on NATS. Subjects
// live in flotilla.dev/proto/events/v1; payloads are eventsv1.Envelope.
package bus

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	eventsv1 "flotilla.dev/proto/events/v1"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
)

// Bus is what daemons publish and subscribe through.
type Bus interface {
	// Publish fills in subject, source and timestamp and sends the event.
	// Events are notifications: a publish never blocks nor fails the caller.
	Publish(subject string, e *eventsv1.Envelope)
	// Subscribe calls fn for every event on subject (wildcards allowed)
	// until the returned function is called.
	Subscribe(subject string, fn func(*eventsv1.Envelope)) (func(), error)
	Close()
}

// NATS is a Bus on a NATS connection. It reconnects forever, so a daemon
// started before the NATS server (or outliving it) keeps working.
type NATS struct {
	nc     *nats.Conn
	source string
}

// Connect connects to url as daemon `source`. It returns at once even when
// the server is not up yet; the client keeps retrying in the background.
func Connect(url, source string) (*NATS, error) {
	nc, err := nats.Connect(url,
		nats.Name("flotilla-"+source),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectBufSize(1<<20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				slog.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { slog.Info("nats reconnected", "url", c.ConnectedUrl()) }),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", url, err)
	}
	return &NATS{nc: nc, source: source}, nil
}

// Conn exposes the underlying connection.
func (b *NATS) Conn() *nats.Conn { return b.nc }

func stamp(subject, source string, e *eventsv1.Envelope) {
	e.Subject = subject
	if e.Source == "" {
		e.Source = source
	}
	if e.Timestamp == 0 {
		e.Timestamp = time.Now().UnixNano()
	}
}

// Publish implements Bus.
func (b *NATS) Publish(subject string, e *eventsv1.Envelope) {
	stamp(subject, b.source, e)
	data, err := proto.Marshal(e)
	if err != nil {
		slog.Error("marshal event", "subject", subject, "error", err)
		return
	}
	if err := b.nc.Publish(subject, data); err != nil {
		slog.Warn("publish event", "subject", subject, "error", err)
	}
}

// Subscribe implements Bus.
func (b *NATS) Subscribe(subject string, fn func(*eventsv1.Envelope)) (func(), error) {
	sub, err := b.nc.Subscribe(subject, func(m *nats.Msg) {
		var e eventsv1.Envelope
		if err := proto.Unmarshal(m.Data, &e); err != nil {
			slog.Warn("bad event", "subject", m.Subject, "error", err)
			return
		}
		fn(&e)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// Flush waits until published events reached the server (bounded).
func (b *NATS) Flush() error { return b.nc.FlushTimeout(2 * time.Second) }

// Close drains and closes the connection.
func (b *NATS) Close() { _ = b.nc.Drain() }

// Mem is an in-memory Bus for unit tests of pure logic.
type Mem struct {
	mu     sync.Mutex
	source string
	subs   map[int]memSub
	next   int
	// Published records every event, in order.
	Published []*eventsv1.Envelope
}

type memSub struct {
	subject string
	fn      func(*eventsv1.Envelope)
}

// NewMem returns an in-memory bus.
func NewMem(source string) *Mem { return &Mem{source: source, subs: map[int]memSub{}} }

// Publish implements Bus; subscribers are called synchronously.
func (m *Mem) Publish(subject string, e *eventsv1.Envelope) {
	stamp(subject, m.source, e)
	m.mu.Lock()
	m.Published = append(m.Published, e)
	var fns []func(*eventsv1.Envelope)
	for _, s := range m.subs {
		if Match(s.subject, subject) {
			fns = append(fns, s.fn)
		}
	}
	m.mu.Unlock()
	for _, fn := range fns {
		fn(e)
	}
}

// Subscribe implements Bus.
func (m *Mem) Subscribe(subject string, fn func(*eventsv1.Envelope)) (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id := m.next
	m.next++
	m.subs[id] = memSub{subject, fn}
	return func() { m.mu.Lock(); delete(m.subs, id); m.mu.Unlock() }, nil
}

// Close implements Bus.
func (m *Mem) Close() {}

// Match reports whether a NATS subject pattern (with * and >) matches subject.
func Match(pattern, subject string) bool {
	p, s := split(pattern), split(subject)
	for i, tok := range p {
		if tok == ">" {
			return len(s) > i
		}
		if i >= len(s) || (tok != "*" && tok != s[i]) {
			return false
		}
	}
	return len(p) == len(s)
}

func split(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}
