package shim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"flotilla.dev/shim/internal/crilog"
	"flotilla.dev/shim/internal/frame"
	"flotilla.dev/shim/internal/layout"
	"flotilla.dev/shim/internal/runtime"
)

// containerIO holds the container's stdio: pipes, or the pty master with a
// terminal. Output goes to the CRI log and to attached clients.
type containerIO struct {
	cfg  Config
	clog *crilog.Writer
	log  *slog.Logger

	stdinR, stdinW *os.File // stdinW is nil without --stdin
	outR, outW     *os.File
	errR, errW     *os.File
	cs             *consoleSocket
	console        *os.File

	copyDone  chan struct{}
	stdinMu   sync.Mutex
	stdinShut bool
	hub       hub
	attachL   *net.UnixListener
}

func newContainerIO(cfg Config, clog *crilog.Writer, log *slog.Logger) (_ *containerIO, err error) {
	c := &containerIO{cfg: cfg, clog: clog, log: log, copyDone: make(chan struct{})}
	defer func() {
		if err != nil {
			c.abort()
		}
	}()
	if cfg.Terminal {
		if c.cs, err = newConsoleSocket(layout.ConsoleSocketFile); err != nil {
			return nil, err
		}
	} else {
		if c.outR, c.outW, err = os.Pipe(); err != nil {
			return nil, err
		}
		if c.errR, c.errW, err = os.Pipe(); err != nil {
			return nil, err
		}
		if cfg.Stdin {
			if c.stdinR, c.stdinW, err = os.Pipe(); err != nil {
				return nil, err
			}
		}
	}
	if c.attachL, err = listen(layout.AttachSocketFile); err != nil {
		return nil, err
	}
	return c, nil
}

// runtimeStdio is what `runtime create` (and so the container) inherits.
func (c *containerIO) runtimeStdio() runtime.Stdio {
	if c.cfg.Terminal {
		return runtime.Stdio{}
	}
	return runtime.Stdio{In: c.stdinR, Out: c.outW, Err: c.errW}
}

// created drops the container's ends of the pipes, or receives the pty.
func (c *containerIO) created(ctx context.Context) error {
	if c.cfg.Terminal {
		f, err := c.cs.get(ctx)
		c.cs = nil
		if err != nil {
			return err
		}
		c.console = f
		return nil
	}
	for _, f := range []**os.File{&c.stdinR, &c.outW, &c.errW} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
	return nil
}

// startCopy starts one goroutine per output stream and the attach server.
func (c *containerIO) startCopy() {
	var wg sync.WaitGroup
	cp := func(stream string, typ byte, r io.Reader) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.clog.Copy(stream, r, c.cfg.LogLineSize, func(b []byte) { c.hub.broadcast(typ, b) })
			if err != nil && !isEIO(err) {
				c.log.Warn("copy container output failed", "stream", stream, "error", err)
			}
		}()
	}
	if c.console != nil {
		cp("stdout", frame.Stdout, c.console)
	} else {
		cp("stdout", frame.Stdout, c.outR)
		cp("stderr", frame.Stderr, c.errR)
	}
	go func() { wg.Wait(); close(c.copyDone) }()
	go c.serveAttach()
}

func isEIO(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe) && pe.Err != nil && pe.Err.Error() == "input/output error"
}

// waitOutput waits until the output streams hit EOF, at most d (a process
// that escaped the container may hold them open).
func (c *containerIO) waitOutput(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.copyDone:
	case <-t.C:
		c.log.Warn("container output still open after exit")
	}
}

// finish tells attached clients the exit code and closes them.
func (c *containerIO) finish(code int32) { c.hub.finish(code) }

func (c *containerIO) writeStdin(b []byte) error {
	c.stdinMu.Lock()
	defer c.stdinMu.Unlock()
	if c.stdinShut {
		return nil
	}
	switch {
	case c.console != nil && c.cfg.Stdin:
		_, err := c.console.Write(b)
		return err
	case c.stdinW != nil:
		_, err := c.stdinW.Write(b)
		return err
	}
	return nil
}

// closeStdin closes the container's stdin (stdin_once): the pipe's write
// end, or an end-of-file character on a terminal.
func (c *containerIO) closeStdin() {
	c.stdinMu.Lock()
	defer c.stdinMu.Unlock()
	if c.stdinShut {
		return
	}
	c.stdinShut = true
	if c.stdinW != nil {
		c.stdinW.Close()
	} else if c.console != nil {
		_, _ = c.console.Write([]byte{4})
	}
}

func (c *containerIO) resize(w, h uint32) error {
	if c.console == nil {
		return fmt.Errorf("resize: container has no terminal: %w", errdefs.ErrFailedPrecondition)
	}
	return setWinsize(c.console, w, h)
}

func (c *containerIO) serveAttach() {
	for {
		conn, err := c.attachL.AcceptUnix()
		if err != nil {
			return
		}
		if c.hub.add(conn) {
			go c.readAttach(conn)
		}
	}
}

// readAttach applies one attached client's frames (stdin, close, resize).
func (c *containerIO) readAttach(conn *net.UnixConn) {
	defer func() {
		c.hub.remove(conn)
		if c.cfg.StdinOnce {
			c.closeStdin()
		}
	}()
	var buf []byte
	for {
		typ, p, err := frame.Read(conn, buf)
		if err != nil {
			return
		}
		buf = p[:0]
		switch typ {
		case frame.Stdin:
			if err := c.writeStdin(p); err != nil {
				c.log.Warn("write container stdin failed", "error", err)
			}
		case frame.CloseStdin:
			if c.cfg.StdinOnce {
				c.closeStdin()
			}
		case frame.Resize:
			if v, err := frame.ParseUint32s(p, 2); err == nil && c.console != nil {
				_ = setWinsize(c.console, v[0], v[1])
			}
		}
	}
}

// abort closes everything after a failed create.
func (c *containerIO) abort() {
	if c.cs != nil {
		c.cs.close()
	}
	c.close()
}

func (c *containerIO) close() {
	for _, f := range []*os.File{c.stdinR, c.stdinW, c.outR, c.outW, c.errR, c.errW, c.console} {
		if f != nil {
			f.Close()
		}
	}
	if c.attachL != nil {
		c.attachL.Close()
		os.Remove(layout.AttachSocketFile)
	}
	c.hub.closeAll()
}

// hub fans output out to attached clients. Writes have a deadline so a
// stuck client cannot stall the container's output for long.
type hub struct {
	mu       sync.Mutex
	conns    map[*net.UnixConn]struct{}
	finished bool
	code     int32
}

const attachWriteTimeout = 10 * time.Second

func (h *hub) add(c *net.UnixConn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.finished {
		c.SetWriteDeadline(time.Now().Add(attachWriteTimeout))
		_ = frame.Write(c, frame.Exit, frame.Uint32s(uint32(h.code)))
		c.Close()
		return false
	}
	if h.conns == nil {
		h.conns = map[*net.UnixConn]struct{}{}
	}
	h.conns[c] = struct{}{}
	return true
}

func (h *hub) remove(c *net.UnixConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.conns, c)
	c.Close()
}

func (h *hub) broadcast(typ byte, b []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		c.SetWriteDeadline(time.Now().Add(attachWriteTimeout))
		if err := frame.Write(c, typ, b); err != nil {
			delete(h.conns, c)
			c.Close()
		}
	}
}

func (h *hub) finish(code int32) {
	h.mu.Lock()
	h.finished, h.code = true, code
	h.mu.Unlock()
	h.broadcast(frame.Exit, frame.Uint32s(uint32(code)))
	h.closeAll()
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		c.Close()
		delete(h.conns, c)
	}
}
