package cri

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listenInNetNS opens a TCP listener on 127.0.0.1:0 inside a netns.
func listenInNetNS(t *testing.T, path string) net.Listener {
	t.Helper()
	type res struct {
		l   net.Listener
		err error
	}
	ch := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		orig, _ := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		defer unix.Close(orig)
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- res{nil, err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- res{nil, err}
			return
		}
		// The loopback of a fresh netns is down.
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			ch <- res{nil, fmt.Errorf("lo up: %v %s", err, out)}
			return
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		ch <- res{l, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.l
}

// TestPortForwardIntoPodNetns forwards a local port with crictl to a server
// that only exists inside the pod's network namespace.
func TestPortForwardIntoPodNetns(t *testing.T) {
	e := newEnv(t)
	sock := e.serve()
	podID := e.runPod(podConfig("pf"))
	l := listenInNetNS(t, e.svc.pods[podID].snapshot().NetNS)
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			fmt.Fprintf(c, "pod says %s", line)
			c.Close()
		}
	}()
	podPort := l.Addr().(*net.TCPAddr).Port
	// A free local port for crictl.
	tmp, _ := net.Listen("tcp", "127.0.0.1:0")
	local := tmp.Addr().(*net.TCPAddr).Port
	tmp.Close()

	ctx, cancel := context.WithCancel(context.Background())
	bin := crictlPath(t)
	cmd := exec.CommandContext(ctx, bin, "--runtime-endpoint", "unix://"+sock, "port-forward", podID, fmt.Sprintf("%d:%d", local, podPort))
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); cmd.Wait() }()
	// crictl prints "Forwarding from 127.0.0.1:<local>" once it listens.
	sc := bufio.NewScanner(stdout)
	var seen []string
	ready := false
	for sc.Scan() {
		seen = append(seen, sc.Text())
		if strings.Contains(sc.Text(), "Forwarding from") {
			ready = true
			break
		}
	}
	if !ready {
		t.Fatalf("crictl port-forward did not start: %q", seen)
	}
	go func() {
		for sc.Scan() {
		}
	}()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", local), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "hello\n")
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || reply != "pod says hello\n" {
		t.Fatalf("reply %q %v", reply, err)
	}
}
