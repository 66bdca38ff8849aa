// Package perfcpu tells where the machine's CPU went during a result's density
// rounds: it reads the samples of `perf record -a -e cpu-clock -k
// CLOCK_REALTIME` as printed by `perf script -F comm,tid,time,period,event`
// and sums their periods (cpu-clock: nanoseconds on a CPU) by process name
// over the rounds' windows.
//
// One density round lasts about a second, so the whole-machine view of perf
// is what shows the cost of a pod: the short-lived processes (runc, CNI
// plugins) do most of the work and are gone before any per-process counter
// can be read.
package perfcpu

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Window is a span of wall-clock time, e.g. one density round.
type Window [2]time.Time

// Usage is CPU time by process name (comm), within the windows.
type Usage struct {
	ByComm  map[string]time.Duration
	Samples int
	Wall    time.Duration // the windows' total length
}

// sampleLine: "<comm> <tid> <seconds>.<fraction>: <period> <event>:", with
// comm right-aligned and possibly containing spaces.
var sampleLine = regexp.MustCompile(`^\s*(.*?)\s+(-?\d+)\s+(\d+)\.(\d+):\s+(\d+)\s+(\S+?):?\s*$`)

// Read sums the cpu-clock periods of the samples inside the windows. A line
// that is not a sample (perf's own warnings) is skipped; a sample of another
// event is an error, since only cpu-clock and task-clock periods are time.
func Read(r io.Reader, windows []Window) (*Usage, error) {
	u := &Usage{ByComm: map[string]time.Duration{}}
	for _, w := range windows {
		u.Wall += w[1].Sub(w[0])
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		m := sampleLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ev := strings.SplitN(m[6], ":", 2)[0]
		if ev != "cpu-clock" && ev != "task-clock" {
			return nil, fmt.Errorf("perf sample of %q: record with -e cpu-clock (its period is time)", m[6])
		}
		t, err := sampleTime(m[3], m[4])
		if err != nil {
			return nil, err
		}
		if !inside(t, windows) {
			continue
		}
		period, err := strconv.ParseInt(m[5], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("perf sample period %q: %w", m[5], err)
		}
		u.ByComm[m[1]] += time.Duration(period)
		u.Samples++
	}
	return u, sc.Err()
}

func sampleTime(sec, frac string) (time.Time, error) {
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	frac = (frac + "000000000")[:9]
	ns, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(s, ns), nil
}

func inside(t time.Time, windows []Window) bool {
	for _, w := range windows {
		if !t.Before(w[0]) && !t.After(w[1]) {
			return true
		}
	}
	return false
}

// Group names the part of a pod start a process belongs to.
func Group(comm string) string {
	switch {
	case comm == "swapper":
		return "idle"
	case strings.HasPrefix(comm, "runc:[") || comm == "exe":
		// runc init before and after it names its stages; "exe" is
		// /proc/self/exe, which runc create runs as the init.
		return "runc init"
	case comm == "runc" || isDigits(comm):
		// A runc run from a file descriptor (the shim's sealed copy,
		// /proc/self/fd/N) is named by the descriptor's number.
		return "runc create (kill, delete)"
	case comm == "bridge" || comm == "host-local" || comm == "portmap" || comm == "loopback" ||
		comm == "firewall" || comm == "tuning" || comm == "bandwidth" || comm == "ptp" || comm == "dhcp":
		return "CNI plugins"
	case comm == "sandboxd" || comm == "netd" || comm == "imaged" || comm == "criproxy" || comm == "nats-server":
		return "Flotilla daemons"
	case comm == "flotilla-shim":
		return "Flotilla shims"
	case strings.HasPrefix(comm, "containerd"):
		return "containerd and its shims"
	case comm == "flotbench":
		return "flotbench (the client; the floor's own work)"
	case comm == "sleep" || comm == "catatonit" || comm == "pause":
		return "pod processes"
	case strings.HasPrefix(comm, "kworker/") || strings.HasPrefix(comm, "ksoftirqd/") ||
		strings.HasPrefix(comm, "rcu_") || strings.HasPrefix(comm, "migration/") || comm == "kthreadd" ||
		strings.HasPrefix(comm, "kdamond") || strings.HasPrefix(comm, "jbd2/") || strings.HasPrefix(comm, "kswapd"):
		return "kernel threads"
	case comm == "perf":
		return "perf (the profiler)"
	}
	return "other"
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

type row struct {
	name string
	d    time.Duration
}

func sorted(m map[string]time.Duration) []row {
	rows := make([]row, 0, len(m))
	for k, v := range m {
		rows = append(rows, row{k, v})
	}
	slices.SortFunc(rows, func(a, b row) int {
		if a.d != b.d {
			return int(b.d - a.d)
		}
		return strings.Compare(a.name, b.name)
	})
	return rows
}

// Print writes the CPU per pod by group, then the top processes, for pods
// pods started in the windows. Idle is the CPUs' time in the idle task: on a
// machine a round saturates, what it leaves unused.
func (u *Usage) Print(w io.Writer, pods int, top int) {
	if pods <= 0 {
		pods = 1
	}
	perPod := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(pods) }
	var busy, all time.Duration
	groups := map[string]time.Duration{}
	for c, d := range u.ByComm {
		g := Group(c)
		groups[g] += d
		all += d
		if g != "idle" {
			busy += d
		}
	}
	fmt.Fprintf(w, "CPU of the machine in %s of density rounds, %d pods, %d samples: %.1f ms per pod busy",
		u.Wall.Round(time.Millisecond), pods, u.Samples, perPod(busy))
	if all > 0 {
		fmt.Fprintf(w, ", %.0f %% idle", 100*float64(groups["idle"])/float64(all))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  %-46s %8s %7s\n", "part", "ms/pod", "share")
	for _, r := range sorted(groups) {
		if r.name == "idle" {
			continue
		}
		fmt.Fprintf(w, "  %-46s %8.2f %6.0f%%\n", r.name, perPod(r.d), 100*float64(r.d)/math.Max(float64(busy), 1))
	}
	fmt.Fprintf(w, "  %-46s %8s %7s\n", "process (comm)", "ms/pod", "part")
	n := 0
	for _, r := range sorted(u.ByComm) {
		if Group(r.name) == "idle" {
			continue
		}
		if n++; n > top {
			break
		}
		fmt.Fprintf(w, "  %-46s %8.2f  %s\n", r.name, perPod(r.d), Group(r.name))
	}
}
