// Package cpustat reads CPU time from procfs, the machine's and that of
// chosen processes, to tell what a scenario cost per pod when the machine is
// saturated and wall time only says that it was.
package cpustat

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"flotilla.dev/lib/procstat"
)

// userHZ is the unit of /proc/stat: USER_HZ, 100 on every Linux ABI.
const userHZ = 100

// Machine returns the time all CPUs together have spent busy since boot:
// every state of procfs's stat "cpu" line but idle and iowait (guest time
// is already counted in user). Its unit is 1/USER_HZ, 10 ms on all CPUs
// together.
func Machine(procfs string) (time.Duration, error) {
	f, err := os.Open(filepath.Join(procfs, "stat"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("%s/stat: %w", procfs, err)
	}
	return parseMachine(line)
}

func parseMachine(line string) (time.Duration, error) {
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, fmt.Errorf("stat: unexpected first line %q", line)
	}
	var busy int64
	// user nice system idle iowait irq softirq steal [guest guest_nice]:
	// guest and guest_nice are part of user and nice already.
	for i, f := range fields[1:] {
		if i >= 8 {
			break
		}
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("stat: %q: %w", line, err)
		}
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		busy += v
	}
	return time.Duration(busy) * time.Second / userHZ, nil
}

// Proc returns the CPU time (user and system) process pid has used so far,
// from its stat, threads that exited included (a daemon's Go runtime ends
// threads, e.g. one a goroutine kept locked when it returned), in units of
// 1/USER_HZ. A process that is gone has 0: take both readings of a window
// from processes that live through it.
func Proc(procfs string, pid int) time.Duration {
	st, err := procstat.Read(procfs, pid)
	if err != nil {
		return 0
	}
	t, _ := ownCPU(st)
	return t
}

// ownCPU is utime + stime (fields 14 and 15) of a process's stat.
func ownCPU(st procstat.Stat) (time.Duration, bool) {
	utime, err := st.Uint(14)
	if err != nil {
		return 0, false
	}
	stime, err := st.Uint(15)
	if err != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * time.Second / userHZ, true
}
