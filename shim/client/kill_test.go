package client_test

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"flotilla.dev/shim/client"
)

// cgroupProcs is the container's pids cgroup's process list.
func (c *ctr) cgroupProcs(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", c.spec.Linux.CgroupsPath, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}

// shimRequest sends one raw control request and returns the answer line.
func shimRequest(t *testing.T, stateDir, req string) string {
	t.Helper()
	conn, err := net.Dial("unix", filepath.Join(stateDir, "shim.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(req + "\n")); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(line, "\n")
}

// A container in its own PID namespace is stopped by the shim signalling
// its init: SIGKILL to all of it needs no runtime call, and takes the
// background process with it. One in the host's PID namespace still gets
// `runtime kill --all`.
func TestKillAllWithAndWithoutTheRuntime(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ownPIDNS    bool
		wantRuntime []string
	}{
		{"own-pidns", true, nil},
		{"host-pidns", false, []string{"kill --all "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCtr(t, false, "sh", "-c", "sleep 1000 & exec sleep 1001")
			if !tc.ownPIDNS {
				var ns []specs.LinuxNamespace
				for _, n := range c.spec.Linux.Namespaces {
					if n.Type != specs.PIDNamespace {
						ns = append(ns, n)
					}
				}
				c.spec.Linux.Namespaces = ns
			}
			rt, log := runcRecorder(t)
			cl := c.spawn(t, func(o *client.SpawnOptions) { o.Runtime = rt })
			if _, err := cl.Start(ctx(t)); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "two processes", func() bool { return len(c.cgroupProcs(t)) == 2 })

			// Bad requests change nothing.
			for _, req := range []string{"kill 0", "kill 65", "kill x", "kill 9 some", "kill 9all"} {
				if got := shimRequest(t, c.stateDir, req); !strings.HasPrefix(got, "err invalid_argument bad kill request") {
					t.Errorf("%q: %q", req, got)
				}
			}
			if n := len(c.cgroupProcs(t)); n != 2 {
				t.Fatalf("after bad kill requests %d processes, want 2", n)
			}

			if err := cl.Kill(ctx(t), syscall.SIGKILL, true); err != nil {
				t.Fatal(err)
			}
			exit, err := cl.Wait(ctx(t))
			if err != nil || exit.Code != 137 {
				t.Fatalf("wait = %+v, %v", exit, err)
			}
			waitFor(t, "no process left", func() bool { return len(c.cgroupProcs(t)) == 0 })
			kills := runtimeCalls(t, log, "kill")
			if len(kills) != len(tc.wantRuntime) {
				t.Fatalf("runtime kill calls %q, want %q", kills, tc.wantRuntime)
			}
			for i, k := range kills {
				if !strings.Contains(k, " "+tc.wantRuntime[i]) {
					t.Errorf("runtime kill call %q, want %q", k, tc.wantRuntime[i])
				}
			}
			// Killing a stopped container succeeds, without the runtime.
			if err := cl.Kill(ctx(t), syscall.SIGKILL, true); err != nil {
				t.Errorf("kill after exit: %v", err)
			}
			if got := shimRequest(t, c.stateDir, "kill 15"); got != "ok" {
				t.Errorf("kill 15 after exit: %q", got)
			}
			if n := len(runtimeCalls(t, log, "kill")); n != len(tc.wantRuntime) {
				t.Errorf("%d runtime kill calls after the exit, want %d", n, len(tc.wantRuntime))
			}
			c.finish(t, cl)
		})
	}
}

// SIGTERM to the init alone is the shim's; the container's handler sees it.
func TestKillSignalsTheInit(t *testing.T) {
	c := newCtr(t, false, "sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.05; done")
	rt, log := runcRecorder(t)
	cl := c.spawn(t, func(o *client.SpawnOptions) { o.Runtime = rt })
	if _, err := cl.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ready", func() bool { return strings.Contains(readLog(t, c.logPath), "ready") })
	if err := cl.Kill(ctx(t), syscall.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	exit, err := cl.Wait(ctx(t))
	if err != nil || exit.Code != 3 || !strings.Contains(readLog(t, c.logPath), "got TERM") {
		t.Fatalf("wait = %+v, %v; log %q", exit, err, readLog(t, c.logPath))
	}
	if kills := runtimeCalls(t, log, "kill"); len(kills) != 0 {
		t.Errorf("runtime kill calls %q, want none", kills)
	}
	c.finish(t, cl)
}
