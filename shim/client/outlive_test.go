package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"flotilla.dev/shim/client"
)

// helperEnv makes the test binary act as a short-lived "sandboxd": it
// spawns and starts a shim, then exits.
const helperEnv = "FLOTILLA_SHIM_TEST_SPAWNER"

func spawnerHelper() int {
	var o client.SpawnOptions
	if err := json.Unmarshal([]byte(os.Getenv(helperEnv)), &o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := client.Spawn(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := cl.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0 // exits without closing anything, like a SIGKILLed sandboxd
}

func TestShimOutlivesSpawnerAndReconnects(t *testing.T) {
	c := newCtr(t, false, "sh", "-c", "echo started; read x; echo after $x; sleep 1000")
	c.writeBundle(t)
	o := c.opts()
	o.Stdin = true
	b, _ := json.Marshal(o)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("spawner: %v: %s", err, out)
	}
	// The spawner is gone; the container runs and logs.
	cl, err := client.Connect(ctx(t), c.stateDir)
	if err != nil {
		t.Fatalf("reconnect: %v", err)
	}
	st, err := cl.State(ctx(t))
	if err != nil || st.Status != client.StatusRunning {
		t.Fatalf("state after reconnect = %+v, %v", st, err)
	}
	waitFor(t, "first line", func() bool { return strings.Contains(readLog(t, c.logPath), "started") })

	// A client disconnect changes nothing; a second client sees the same.
	cl.Close()
	cl, err = client.Connect(ctx(t), c.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Attach while the container runs: stdin reaches it; the session ends
	// when the caller cancels, and the container keeps running.
	actx, cancel := context.WithCancel(ctx(t))
	attached := make(chan error, 1)
	go func() { attached <- cl.Attach(actx, client.Streams{Stdin: strings.NewReader("reconnected\n")}) }()
	waitFor(t, "line after stdin", func() bool { return strings.Contains(readLog(t, c.logPath), "after reconnected") })
	cancel()
	if err := <-attached; err != context.Canceled {
		t.Errorf("attach after cancel: %v", err)
	}
	res, err := cl.ExecSync(ctx(t), &specs.Process{Args: []string{"echo", "alive"}, Cwd: "/", Env: []string{"PATH=/bin"}}, 10*time.Second)
	if err != nil || string(res.Stdout) != "alive\n" {
		t.Fatalf("exec sync after reconnect = %+v, %v", res, err)
	}
	if err := cl.Kill(ctx(t), syscall.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	exit, err := cl.Wait(ctx(t))
	if err != nil || exit.Code != 137 {
		t.Fatalf("wait = %+v, %v", exit, err)
	}
	c.finish(t, cl)
	if _, err := cl.State(ctx(t)); !errdefs.IsUnavailable(err) {
		t.Errorf("state through a closed shim: %v", err)
	}
}
