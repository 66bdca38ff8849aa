package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"
	"unsafe"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"golang.org/x/sys/unix"
)

// reapDelay is how long a plugin that succeeded stays a zombie before netd
// reaps it.
const reapDelay = 10 * time.Millisecond

// reapLaterExec runs a plugin as libcni's invoke.DefaultExec does (stdin
// given, stdout and stderr read to the end, "text file busy" retried, a
// failure decoded from the plugin's JSON error), but reaps a plugin that
// exited 0 a little later, off the caller's path.
//
// Why: reaping drops the plugin's /proc entries (release_task →
// proc_flush_pid → shrink_dcache_parent). Right after a Go plugin exits, its
// last threads are still dropping their own entries under /proc/<pid>/task,
// and a reap then loops over the dying ones until they are gone; when the
// thread doing that is preempted, the loop runs until the reaper's time
// slice ends. Under concurrent pod starts that was about 2 ms of netd's CPU
// per pod, 35-45 % of all of it in CPU profiles, all in waitid, and none in
// sequential starts. waitid with WNOWAIT tells how the plugin ended without
// reaping it.
type reapLaterExec struct {
	version.PluginDecoder
	Stderr io.Writer
}

func (e *reapLaterExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

func (e *reapLaterExec) ExecPlugin(ctx context.Context, pluginPath string, stdin []byte, environ []string) ([]byte, error) {
	for try := 0; ; try++ {
		stdout, stderr, err := runPlugin(ctx, pluginPath, stdin, environ)
		if err == nil {
			if e.Stderr != nil && len(stderr) > 0 {
				_, _ = e.Stderr.Write(stderr)
			}
			return stdout, nil
		}
		// A plugin being replaced right now: as libcni, wait and retry.
		if strings.Contains(err.Error(), "text file busy") && try < 5 {
			select {
			case <-time.After(time.Second):
				continue
			case <-ctx.Done():
			}
		}
		return nil, pluginErr(err, stdout, stderr)
	}
}

// runPlugin runs the plugin and returns what it wrote. It returns when the
// plugin has exited; one that exited 0 is reaped reapDelay later.
func runPlugin(ctx context.Context, path string, stdin []byte, environ []string) (stdout, stderr []byte, err error) {
	c := exec.CommandContext(ctx, path)
	c.Env = environ
	c.Stdin = bytes.NewReader(stdin)
	outPipe, err := c.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	errPipe, err := c.StderrPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := c.Start(); err != nil {
		return nil, nil, err
	}
	errDone := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(errPipe)
		errDone <- b
	}()
	stdout, _ = io.ReadAll(outPipe)
	stderr = <-errDone
	if exitedZero(c.Process.Pid) {
		time.AfterFunc(reapDelay, func() { _ = c.Wait() })
		return stdout, stderr, nil
	}
	return stdout, stderr, c.Wait()
}

// exitedZero waits until child pid has exited, leaving it unreaped, and
// reports whether it exited with status 0. It is false when waitid fails: the
// caller then learns the outcome from Wait.
func exitedZero(pid int) bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false
		}
		break
	}
	const cldExited = 1 // CLD_EXITED
	return info.Code == cldExited && siginfoStatus(&info) == 0
}

// siginfoStatus is si_status of a SIGCHLD siginfo: after si_signo, si_errno
// and si_code (padded to the pointer size) come si_pid, si_uid, si_status.
func siginfoStatus(info *unix.Siginfo) int32 {
	const ptr = unsafe.Sizeof(uintptr(0))
	const fields = (12 + ptr - 1) / ptr * ptr
	return *(*int32)(unsafe.Add(unsafe.Pointer(info), fields+8))
}

// pluginErr is libcni's reading of a failed plugin: its JSON error on
// stdout, else its stderr.
func pluginErr(err error, stdout, stderr []byte) error {
	emsg := types.Error{}
	switch {
	case len(stdout) == 0 && len(stderr) == 0:
		emsg.Msg = fmt.Sprintf("netplugin failed with no error message: %v", err)
	case len(stdout) == 0:
		emsg.Msg = fmt.Sprintf("netplugin failed: %q: %v", string(stderr), err)
	default:
		if perr := json.Unmarshal(stdout, &emsg); perr != nil {
			emsg.Msg = fmt.Sprintf("netplugin failed but error parsing its diagnostic message %q: %v", string(stdout), perr)
		}
	}
	return &emsg
}
