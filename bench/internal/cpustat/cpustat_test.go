package cpustat

import (
	"os"
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

// A process that burns CPU shows it in Proc, to within the burn, and the
// machine's busy time grows by at least as much.
func TestProcAndMachineSeeABurn(t *testing.T) {
	self := os.Getpid()
	m0, err := Machine("/proc")
	if err != nil {
		t.Fatal(err)
	}
	p0 := Proc("/proc", self)
	start := time.Now()
	x := 0
	for time.Since(start) < 300*time.Millisecond {
		x++
	}
	p := Proc("/proc", self) - p0
	m1, err := Machine("/proc")
	if err != nil {
		t.Fatal(err)
	}
	// stat's unit is 10 ms.
	if p < 250*time.Millisecond || p > 2*time.Second {
		t.Errorf("this process used %v of CPU in a 300 ms busy loop (%d rounds)", p, x)
	}
	// The machine's counter moves in 10 ms ticks per CPU.
	if m := m1 - m0; m < p-50*time.Millisecond {
		t.Errorf("machine busy %v < this process's %v", m, p)
	}
	if Proc("/proc", 1<<30) != 0 {
		t.Error("a process that does not exist has CPU time")
	}
}
