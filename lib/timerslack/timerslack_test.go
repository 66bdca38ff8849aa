package timerslack

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func threadSlacks(t *testing.T) map[string]int64 {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/" + task.Name() + "/timerslack_ns")
		if err != nil {
			continue // exited
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out[task.Name()] = v
	}
	return out
}

// childSlack starts `cat /proc/self/timerslack_ns` through start and returns
// what the child read.
func childSlack(t *testing.T, start func(*exec.Cmd) error) int64 {
	t.Helper()
	cmd := exec.Command("cat", "/proc/self/timerslack_ns")
	var out strings.Builder
	cmd.Stdout = &out
	if err := start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The test changes the whole test process's slack, so it is one test:
// every thread, threads started afterwards, plain children and children
// started by Start.
func TestSetEveryThreadAndStartWithInherited(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("setting other threads' slack needs CAP_SYS_NICE")
	}
	orig, err := Current()
	if err != nil {
		t.Fatal(err)
	}
	// Not recorded yet, or recorded by an earlier run of this test (-count),
	// which put the slack back: the current one either way.
	if got := inherited.Load(); got != 0 && got != orig {
		t.Fatalf("inherited slack before Set = %d, want 0 or the current %d", got, orig)
	}
	if err := Set(0); err == nil {
		t.Fatal("Set(0) succeeded, want an error")
	}
	const want = 437_000
	if orig == want {
		t.Fatalf("the test's value %d is already the process's slack", want)
	}
	// Keep threads busy being created while Set walks them.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				done := make(chan struct{})
				go func() {
					runtimeLockAndExit()
					close(done)
				}()
				<-done
			}
		}()
	}
	err = Set(want)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	// Threads made after Set (each locked goroutine that exits ends its
	// thread, so the runtime keeps making new ones) inherit the value.
	for i := 0; i < 8; i++ {
		done := make(chan struct{})
		go func() { runtimeLockAndExit(); close(done) }()
		<-done
	}
	for tid, v := range threadSlacks(t) {
		if v != want {
			t.Errorf("thread %s has slack %d, want %d", tid, v, want)
		}
	}
	if got := inherited.Load(); got != orig {
		t.Errorf("inherited slack after Set = %d, want %d", got, orig)
	}
	if got := childSlack(t, (*exec.Cmd).Start); got != want {
		t.Errorf("a child started by cmd.Start has slack %d, want the daemon's %d", got, want)
	}
	for i := 0; i < 20; i++ {
		if got := childSlack(t, Start); got != orig {
			t.Fatalf("a child started by Start has slack %d, want the inherited %d", got, orig)
		}
	}
	// Start put the calling thread's slack back.
	for tid, v := range threadSlacks(t) {
		if v != want {
			t.Errorf("after Start, thread %s has slack %d, want %d", tid, v, want)
		}
	}
	if err := Run(exec.Command("true")); err != nil {
		t.Errorf("Run(true): %v", err)
	}
	// Leave the process as it was for other tests in this binary.
	if err := Set(orig); err != nil {
		t.Fatal(err)
	}
}

// runtimeLockAndExit locks the goroutine to its thread and returns without
// unlocking: the runtime then ends that thread (or parks it for good, if it
// is the main thread).
func runtimeLockAndExit() { runtime.LockOSThread() }
