package shim

import (
	"context"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// consoleSocket receives the pty master the runtime sends over
// --console-socket (SCM_RIGHTS).
type consoleSocket struct {
	name string
	l    *net.UnixListener
	ch   chan consoleResult
}

type consoleResult struct {
	f   *os.File
	err error
}

func newConsoleSocket(name string) (*consoleSocket, error) {
	l, err := listen(name)
	if err != nil {
		return nil, err
	}
	cs := &consoleSocket{name: name, l: l, ch: make(chan consoleResult, 1)}
	go func() { cs.ch <- cs.accept() }()
	return cs, nil
}

func (cs *consoleSocket) accept() consoleResult {
	c, err := cs.l.AcceptUnix()
	if err != nil {
		return consoleResult{err: err}
	}
	defer c.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return consoleResult{err: fmt.Errorf("receive pty master: %w", err)}
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return consoleResult{err: fmt.Errorf("receive pty master: bad control message: %v", err)}
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return consoleResult{err: fmt.Errorf("receive pty master: bad rights: %v", err)}
	}
	unix.CloseOnExec(fds[0])
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return consoleResult{err: err}
	}
	return consoleResult{f: os.NewFile(uintptr(fds[0]), "pty-master")}
}

// get waits for the pty master after the runtime succeeded.
func (cs *consoleSocket) get(ctx context.Context) (*os.File, error) {
	defer cs.close()
	select {
	case r := <-cs.ch:
		return r.f, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for pty master: %w", ctx.Err())
	}
}

func (cs *consoleSocket) close() {
	cs.l.Close()
	os.Remove(cs.name)
}

// setWinsize resizes the terminal of a pty master.
func setWinsize(f *os.File, width, height uint32) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: uint16(width), Row: uint16(height)})
	})
	if err != nil {
		return err
	}
	return ioErr
}
