package client_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"flotilla.dev/shim/client"
)

// cgroupDirs are the container's cgroup directories that exist now, in the
// hierarchies this machine mounts.
func (c *ctr) cgroupDirs() []string {
	var dirs []string
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range ents {
		p := filepath.Join("/sys/fs/cgroup", e.Name(), c.spec.Linux.CgroupsPath)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			dirs = append(dirs, p)
		}
	}
	return dirs
}

// Deleting a stopped container with its own PID namespace removes its
// cgroups (a cgroup made below one too) and runc's state without a runc
// process; where runc has more to do (a shared PID namespace, a poststop
// hook) it still runs, and the hook does run.
func TestDeleteStoppedWithAndWithoutTheRuntime(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mod     func(c *ctr, dir string)
		runtime bool
	}{
		{"own-pidns", nil, false},
		{"host-pidns", func(c *ctr, _ string) {
			var ns []specs.LinuxNamespace
			for _, n := range c.spec.Linux.Namespaces {
				if n.Type != specs.PIDNamespace {
					ns = append(ns, n)
				}
			}
			c.spec.Linux.Namespaces = ns
		}, true},
		{"poststop-hook", func(c *ctr, dir string) {
			c.spec.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/sh",
				Args: []string{"sh", "-c", "touch " + filepath.Join(dir, "poststop-ran")}}}}
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := newCtr(t, false, "sleep", "1000")
			if tc.mod != nil {
				tc.mod(c, dir)
			}
			rt, log := runcRecorder(t)
			cl := c.spawn(t, func(o *client.SpawnOptions) { o.Runtime = rt })
			if _, err := cl.Start(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if err := cl.Kill(ctx(t), syscall.SIGKILL, true); err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Wait(ctx(t)); err != nil {
				t.Fatal(err)
			}
			cgroups := c.cgroupDirs()
			if len(cgroups) == 0 {
				t.Fatal("no cgroup directory of the container found")
			}
			// A cgroup below the container's (as a container's own cgroup
			// manager may leave) goes with it.
			if err := os.Mkdir(filepath.Join(cgroups[0], "child"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := cl.Delete(ctx(t)); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if left := c.cgroupDirs(); len(left) != 0 {
				t.Errorf("cgroups left: %v", left)
			}
			if _, err := os.Stat(filepath.Join(c.runcRoot, c.id)); !os.IsNotExist(err) {
				t.Errorf("runc state left: %v", err)
			}
			if calls := runtimeCalls(t, log, "delete"); len(calls) > 0 != tc.runtime {
				t.Errorf("runtime delete calls %q, want them: %v", calls, tc.runtime)
			}
			if tc.name == "poststop-hook" {
				if _, err := os.Stat(filepath.Join(dir, "poststop-ran")); err != nil {
					t.Errorf("poststop hook did not run: %v", err)
				}
			}
			c.finish(t, cl) // a second delete of a deleted container succeeds
		})
	}
}
