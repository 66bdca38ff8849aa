package cpustat

import (
	"os"
	"syscall"
	"testing"
	"time"

	"flotilla.dev/lib/procstat"
)

func TestParseMachine(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := parseMachine("cpu  439207 1 283154 2938494 19240 2 5780 1576 900 0\n")
	if err != nil {
		t.Fatal(err)
	}
	want := time.Duration(439207+1+283154+2+5780+1576) * 10 * time.Millisecond
	if got != want {
		t.Fatalf("busy = %v, want %v (idle, iowait and guest left out)", got, want)
	}
	for _, bad := range []string{"", "intr 1 2 3 4 5", "cpu 1 2 x 4 5"} {
		if _, err := parseMachine(bad); err == nil {
			t.Errorf("parseMachine(%q): no error", bad)
		}
	}
}

func TestOwnCPU(t *testing.T) {
	// pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime ...
	b := []byte("4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 123 45 900 900 20 0 9 0\n")
	st, err := procstat.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := ownCPU(st)
	if want := 168 * 10 * time.Millisecond; !ok || got != want {
		t.Fatalf("ownCPU = %v, %v; want %v (utime + stime, children left out)", got, ok, want)
	}
	for _, bad := range []string{"1 (x) S 1 2", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 1"} {
		st, err := procstat.Parse([]byte(bad))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := ownCPU(st); ok {
			t.Errorf("ownCPU(%q) ok", bad)
		}
	}
}

// A process that burns CPU shows it in Proc, as getrusage counts it, and
// the machine's busy time grows by at least as much. The burn is counted in
// CPU time, not wall time: on a busy machine (go test runs packages in
// parallel) a 300 ms loop gets less than 300 ms of CPU.
func TestProcAndMachineSeeABurn(t *testing.T) {
	self := os.Getpid()
	m0, err := Machine("/proc")
	if err != nil {
		t.Fatal(err)
	}
	p0, r0 := Proc("/proc", self), rusage(t)
	deadline := time.Now().Add(20 * time.Second)
	x := 0
	for rusage(t)-r0 < 300*time.Millisecond {
		for i := 0; i < 100000; i++ {
			x++
		}
		if time.Now().After(deadline) {
			t.Fatalf("did not get 300 ms of CPU in 20 s (%d rounds)", x)
		}
	}
	p, r := Proc("/proc", self)-p0, rusage(t)-r0
	m1, err := Machine("/proc")
	if err != nil {
		t.Fatal(err)
	}
	// stat's unit is 10 ms; getrusage's is finer.
	if p < r-50*time.Millisecond || p > r+50*time.Millisecond {
		t.Errorf("Proc saw %v of CPU in a burn getrusage counts as %v", p, r)
	}
	// The machine's counter moves in 10 ms ticks per CPU.
	if m := m1 - m0; m < p-50*time.Millisecond {
		t.Errorf("machine busy %v < this process's %v", m, p)
	}
	if Proc("/proc", 1<<30) != 0 {
		t.Error("a process that does not exist has CPU time")
	}
}

// rusage is this process's user + system CPU time.
func rusage(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
