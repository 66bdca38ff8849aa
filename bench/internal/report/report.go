// Package report holds a benchmark result (the JSON written per run) and
// prints it, or several of them side by side, as tables.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"flotilla.dev/bench/internal/procmem"
	"flotilla.dev/bench/internal/stats"
	"flotilla.dev/lib/cgroupfs"
)

// Result of one flotbench run against one target (a CRI endpoint or the
// floor).
type Result struct {
	Name     string    `json:"name"`
	Endpoint string    `json:"endpoint,omitempty"`
	Runtime  string    `json:"runtime,omitempty"` // from Version
	Machine  Machine   `json:"machine"`
	Started  time.Time `json:"started"`
	// Ops are timed operations by key, e.g. "podstart.total", "exec_sync".
	Ops map[string]stats.Summary `json:"ops"`
	// Values are derived numbers by key, e.g. "density.pods_per_s".
	Values map[string]float64 `json:"values"`
	// Memory by key: "daemons.idle", "daemons.loaded", "per_pod.all".
	Memory map[string]procmem.Usage `json:"memory,omitempty"`
	// Unsupported scenarios with the reason.
	Unsupported map[string]string `json:"unsupported,omitempty"`
	// Problems met outside timed calls (setup, cleanup).
	Problems []string `json:"problems,omitempty"`
	// Windows: when each scenario ran (start, end), e.g. "podstart" for
	// the sequential starts, to match the daemons' logs (flotbench phases).
	Windows map[string][2]time.Time `json:"windows,omitempty"`
}

// SetMedian sets Values[key] to the median of xs; no value when xs is empty.
func (r *Result) SetMedian(key string, xs []float64) {
	if len(xs) > 0 {
		r.Values[key] = stats.Median(xs)
	}
}

// SetDensityRounds records density measured in rounds, the same keys for a
// CRI runtime and for the floor: density.rounds (rounds with a rate), the
// medians of the rounds' rate (density.pods_per_s, with the slowest and
// fastest round's as .min and .max), wall time (density.wall_ms) and CPU per
// pod (density.cpu_ms_per_pod).
func (r *Result) SetDensityRounds(rate, wallMs, cpuMsPerPod []float64) {
	r.Values["density.rounds"] = float64(len(rate))
	r.SetMedian("density.pods_per_s", rate)
	if len(rate) > 0 {
		r.Values["density.pods_per_s.min"] = slices.Min(rate)
		r.Values["density.pods_per_s.max"] = slices.Max(rate)
	}
	r.SetMedian("density.wall_ms", wallMs)
	r.SetMedian("density.cpu_ms_per_pod", cpuMsPerPod)
}

// SetWindow records that scenario ran from w[0] to w[1].
func (r *Result) SetWindow(scenario string, w [2]time.Time) {
	if r.Windows == nil {
		r.Windows = map[string][2]time.Time{}
	}
	r.Windows[scenario] = w
}

// Machine the run happened on.
type Machine struct {
	Cores  int    `json:"cores"`
	Kernel string `json:"kernel"`
	OS     string `json:"os"`
	CPU    string `json:"cpu"`
	// LoadAvg is /proc/loadavg when the run started: the machine may be
	// shared, and a loaded machine stretches every number.
	LoadAvg string `json:"loadavg"`
	// CgroupMoveMs is how long moving this process into the cgroup it is
	// already in took when the run started (0 written to its cgroup.procs).
	// Unless another move happened within the last RCU grace period, the
	// kernel waits for one, 10-20 ms here, and runc pays that wait in every
	// create; with favordynmods (a mount option that stays in effect until
	// reboot on 6.18) it does not. Runs at ≈ 0.05 ms and runs at ≈ 15 ms are
	// not comparable. 0: not measured (no writable cgroup.procs).
	CgroupMoveMs float64 `json:"cgroup_move_ms,omitempty"`
}

// New returns an empty result for name.
func New(name string) *Result {
	return &Result{Name: name, Machine: ThisMachine(), Started: time.Now().UTC(),
		Ops: map[string]stats.Summary{}, Values: map[string]float64{},
		Memory: map[string]procmem.Usage{}, Unsupported: map[string]string{}}
}

// ThisMachine describes the machine from /proc and /etc/os-release.
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	m.CgroupMoveMs = cgroupMove()
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// cgroupMove times writing 0 (this process) to the cgroup.procs of a cgroup
// it is in: a move that changes nothing but takes the same lock as runc's.
func cgroupMove() float64 {
	files, err := cgroupfs.ProcsFiles(os.Getpid())
	if err != nil {
		return 0
	}
	for _, p := range files {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			continue
		}
		t := time.Now()
		_, err = f.Write([]byte("0"))
		el := time.Since(t)
		f.Close()
		if err == nil {
			return float64(el.Nanoseconds()) / 1e6
		}
	}
	return 0
}

// Problem records a problem met outside a timed call.
func (r *Result) Problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Write stores r as indented JSON in path.
func (r *Result) Write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Read loads a result written by Write.
func Read(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return &r, nil
}

// Print writes the human table of one result.
func (r *Result) Print(w io.Writer) {
	fmt.Fprintf(w, "== %s %s %s\n", r.Name, r.Endpoint, r.Runtime)
	fmt.Fprintf(w, "   machine: %d cores, %s, kernel %s, %s, load %s, cgroup move %.2f ms\n", r.Machine.Cores, r.Machine.OS,
		r.Machine.Kernel, r.Machine.CPU, r.Machine.LoadAvg, r.Machine.CgroupMoveMs)
	keys := sortedKeys(r.Ops)
	fmt.Fprintf(w, "%-34s %5s %6s %10s %10s %10s\n", "operation", "n", "errors", "p50 ms", "p90 ms", "max ms")
	for _, k := range keys {
		s := r.Ops[k]
		fmt.Fprintf(w, "%-34s %5d %6d %10s %10s %10s\n", k, s.N, s.Errors, num(s.P50, s.N), num(s.P90, s.N), num(s.Max, s.N))
		for _, e := range s.Sample {
			fmt.Fprintf(w, "    error: %s\n", e)
		}
	}
	for _, k := range sortedKeys(r.Values) {
		fmt.Fprintf(w, "%-34s %10.3f\n", k, r.Values[k])
	}
	for _, k := range sortedKeys(r.Memory) {
		u := r.Memory[k]
		fmt.Fprintf(w, "%-34s %3d procs  PSS %8.2f MiB  RSS %8.2f MiB\n", "memory."+k, u.Procs, u.PSSMiB(), u.RSSMiB())
		for _, n := range sortedKeys(u.ByName) {
			fmt.Fprintf(w, "    %-30s %3d procs  PSS %8.2f MiB\n", n, u.ByName[n], float64(u.PSSByName[n])/1024)
		}
	}
	for _, k := range sortedKeys(r.Unsupported) {
		fmt.Fprintf(w, "%-34s unsupported: %s\n", k, r.Unsupported[k])
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
}

func num(v float64, n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
