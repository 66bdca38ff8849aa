package client_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"flotilla.dev/shim/client"
)

// TestShimMemory spawns 10 shims with running containers and reports each
// shim's RSS and PSS from /proc/PID/smaps_rollup (numbers for README.md).
// It only measures; set FLOTILLA_SHIM_MEASURE=1 to run it.
func TestShimMemory(t *testing.T) {
	if os.Getenv("FLOTILLA_SHIM_MEASURE") == "" {
		t.Skip("set FLOTILLA_SHIM_MEASURE=1 to measure shim memory")
	}
	const n = 10
	type running struct {
		c  *ctr
		cl *client.Client
	}
	var all []running
	var shimTime, bareTime time.Duration
	for i := 0; i < n; i++ {
		c := newCtr(t, false, "sleep", "1000")
		c.id = fmt.Sprintf("%s-%d", c.id, i)
		c.spec.Linux.CgroupsPath += fmt.Sprintf("-%d", i)
		t0 := time.Now()
		cl := c.spawn(t, nil)
		if _, err := cl.Start(ctx(t)); err != nil {
			t.Fatal(err)
		}
		shimTime += time.Since(t0)
		all = append(all, running{c, cl})
		bareTime += bareRunc(t, c)
	}
	t.Logf("create+start of %d containers: through the shim %v each, bare runc %v each", n, shimTime/n, bareTime/n)
	var rss, pss, priv, threads int
	for _, r := range all {
		pid, err := r.cl.ShimPid()
		if err != nil {
			t.Fatal(err)
		}
		m := smapsRollup(t, pid)
		rss += m["Rss:"]
		pss += m["Pss:"]
		priv += m["Private_Dirty:"] + m["Private_Clean:"]
		threads += statusField(t, pid, "Threads:")
	}
	t.Logf("%d shims: mean RSS %d KiB, PSS %d KiB, private %d KiB, threads %.1f", n, rss/n, pss/n, priv/n, float64(threads)/n)
	for _, r := range all {
		if err := r.cl.Kill(ctx(t), syscall.SIGKILL, false); err != nil {
			t.Fatal(err)
		}
		if _, err := r.cl.Wait(ctx(t)); err != nil {
			t.Fatal(err)
		}
		r.c.finish(t, r.cl)
	}
}

// bareRunc times `runc create` + `runc start` of the same bundle under
// another id, then removes that container.
func bareRunc(t *testing.T, c *ctr) time.Duration {
	t.Helper()
	id := c.id + "-bare"
	root := c.runcRoot + "-bare"
	t0 := time.Now()
	// The container inherits runc's stdio: /dev/null, never a pipe this
	// test would wait on.
	for _, args := range [][]string{
		{"--root", root, "create", "--bundle", c.bundle, "--pid-file", root + ".pid", id},
		{"--root", root, "start", id},
	} {
		if err := exec.Command("runc", args...).Run(); err != nil {
			t.Fatalf("runc %v: %v", args, err)
		}
	}
	d := time.Since(t0)
	if out, err := exec.Command("runc", "--root", root, "delete", "--force", id).CombinedOutput(); err != nil {
		t.Fatalf("runc delete: %v: %s", err, out)
	}
	// Its init was reparented to this subreaper process: reap it.
	data, err := os.ReadFile(root + ".pid")
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	reapStatus(t, pid)
	return d
}

func smapsRollup(t *testing.T, pid int) map[string]int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 3 && fs[2] == "kB" {
			v, _ := strconv.Atoi(fs[1])
			m[fs[0]] = v
		}
	}
	return m
}

func statusField(t *testing.T, pid int, key string) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, key) {
			v, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(l, key)))
			return v
		}
	}
	return 0
}
