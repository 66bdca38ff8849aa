package report

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// Metric is one row of the comparison table.
type Metric struct {
	Label string
	Unit  string
	Get   func(*Result) (float64, bool)
}

func opP50(key string) func(*Result) (float64, bool) {
	return func(r *Result) (float64, bool) {
		s, ok := r.Ops[key]
		return s.P50, ok && s.N > 0
	}
}

func value(key string) func(*Result) (float64, bool) {
	return func(r *Result) (float64, bool) { v, ok := r.Values[key]; return v, ok }
}

func pss(key string) func(*Result) (float64, bool) {
	return func(r *Result) (float64, bool) {
		u, ok := r.Memory[key]
		return u.PSSMiB(), ok && u.Procs > 0
	}
}

// Metrics compared across results, in table order. The floor's pod start is
// runc create+start plus netns+CNI ADD.
var Metrics = []Metric{
	{"pod start total p50", "ms", opP50("podstart.total")},
	{"  RunPodSandbox p50", "ms", opP50("podstart.run_pod")},
	{"  CreateContainer p50", "ms", opP50("podstart.create")},
	{"  StartContainer p50", "ms", opP50("podstart.start")},
	{"  floor runc create+start p50", "ms", opP50("floor.runc_total")},
	{"  floor netns+CNI ADD p50", "ms", opP50("floor.netns_cni_add")},
	{"  floor pod, paired p50", "ms", opP50("floor.paired_pod")},
	{"  pod start / paired floor p50", "x", value("podstart.vs_paired_floor")},
	{"teardown StopContainer p50", "ms", opP50("teardown.stop_container")},
	{"teardown StopPodSandbox p50", "ms", opP50("teardown.stop_pod")},
	{"teardown RemovePodSandbox p50", "ms", opP50("teardown.remove_pod")},
	{"  floor runc kill+delete p50", "ms", opP50("floor.runc_teardown")},
	{"  floor CNI DEL+netns p50", "ms", opP50("floor.cni_del_netns")},
	{"density pods/s (c=8)", "pods/s", value("density.pods_per_s")},
	{"  floor just before", "pods/s", value("floor.density_pods_per_s")},
	{"  density / floor just before", "x", value("density.vs_floor")},
	{"  slowest round", "pods/s", value("density.pods_per_s.min")},
	{"density CPU per pod, machine", "ms", value("density.cpu_ms_per_pod")},
	{"  of it the daemons' own", "ms", value("density.daemons_cpu_ms_per_pod")},
	{"  the floor's just before", "ms", value("floor.density_cpu_ms_per_pod")},
	{"density teardown wall", "ms", value("density.teardown_wall_ms")},
	{"per-pod PSS", "MiB", value("density.per_pod_pss_mib")},
	{"per-pod RSS", "MiB", value("density.per_pod_rss_mib")},
	{"daemons PSS idle", "MiB", pss("daemons.idle")},
	{"daemons PSS with pods", "MiB", pss("daemons.loaded")},
	{"ExecSync echo p50", "ms", opP50("exec_sync")},
	{"  floor runc exec echo p50", "ms", opP50("floor.runc_exec")},
	{"ListContainers p50", "ms", opP50("list.containers")},
	{"ListPodSandbox p50", "ms", opP50("list.pod_sandbox")},
	{"ListContainerStats p50", "ms", opP50("list.container_stats")},
	{"STARTED event latency p50", "ms", opP50("event.started")},
}

// Compare prints one table: a column per result and, for each result after
// the first, the ratio first/other.
func Compare(w io.Writer, rs []*Result) {
	if len(rs) == 0 {
		return
	}
	// The floor is a reference for the pod start of the others: merge its
	// floor.* ops into every result's row set by lookup.
	var floor *Result
	for _, r := range rs {
		if _, ok := r.Ops["floor.runc_total"]; ok {
			floor = r
		}
	}
	hdr := fmt.Sprintf("%-32s %-7s", "metric", "unit")
	for _, r := range rs {
		hdr += fmt.Sprintf(" %12s", trunc(r.Name, 12))
	}
	for _, r := range rs[1:] {
		hdr += fmt.Sprintf(" %22s", trunc(rs[0].Name+"/"+r.Name, 22))
	}
	fmt.Fprintln(w, hdr)
	fmt.Fprintln(w, strings.Repeat("-", len(hdr)))
	for _, m := range Metrics {
		vals := make([]float64, len(rs))
		oks := make([]bool, len(rs))
		line := fmt.Sprintf("%-32s %-7s", m.Label, m.Unit)
		any := false
		for i, r := range rs {
			vals[i], oks[i] = m.Get(r)
			// The floor's pod start total is the sum of its two parts.
			if r == floor && m.Label == "pod start total p50" {
				a, ok1 := opP50("floor.runc_total")(r)
				b, ok2 := opP50("floor.netns_cni_add")(r)
				vals[i], oks[i] = a+b, ok1 && ok2
			}
			if oks[i] {
				any = true
				line += fmt.Sprintf(" %12.2f", vals[i])
			} else {
				line += fmt.Sprintf(" %12s", "-")
			}
		}
		if !any {
			continue
		}
		for i := 1; i < len(rs); i++ {
			// A row that is already a ratio (unit "x") is not divided again.
			if m.Unit != "x" && oks[0] && oks[i] && vals[i] != 0 && !math.IsNaN(vals[i]) {
				line += fmt.Sprintf(" %21.2fx", vals[0]/vals[i])
			} else {
				line += fmt.Sprintf(" %22s", "-")
			}
		}
		fmt.Fprintln(w, line)
	}
	for _, r := range rs {
		for k, why := range r.Unsupported {
			fmt.Fprintf(w, "%s: %s unsupported: %s\n", r.Name, k, why)
		}
		errs := 0
		for _, s := range r.Ops {
			errs += s.Errors
		}
		if errs > 0 {
			fmt.Fprintf(w, "%s: %d failed calls (see its JSON for the errors)\n", r.Name, errs)
		}
	}
}

// Target is one of issue 6's targets for the runtime measured first: the
// value of the Metrics row Label must be at most (Max) or at least Bound.
type Target struct {
	Label string
	Max   bool
	Bound float64
	Unit  string
}

// Targets are issue 6's, in the order it lists them.
var Targets = []Target{
	{"pod start total p50", true, 65, "ms"},
	{"  pod start / paired floor p50", true, 1.3, "x"},
	{"density pods/s (c=8)", false, 30, "pods/s"},
	{"per-pod PSS", true, 0.5, "MiB"},
	{"daemons PSS idle", true, 50, "MiB"},
	{"ExecSync echo p50", true, 10, "ms"},
	{"STARTED event latency p50", true, 5, "ms"},
}

// PrintTargets writes, for r, each target with its value and "met",
// "missed" or "not measured", and how many were met.
func PrintTargets(w io.Writer, r *Result) {
	get := map[string]func(*Result) (float64, bool){}
	for _, m := range Metrics {
		get[m.Label] = m.Get
	}
	met := 0
	fmt.Fprintf(w, "targets of issue 6, %s:\n", r.Name)
	for _, t := range Targets {
		op := ">="
		if t.Max {
			op = "<="
		}
		v, ok := get[t.Label](r)
		verdict := "not measured"
		switch {
		case ok && (t.Max && v <= t.Bound || !t.Max && v >= t.Bound):
			verdict = "met"
			met++
		case ok:
			verdict = "missed"
		}
		val := "-"
		if ok {
			val = fmt.Sprintf("%.2f", v)
		}
		fmt.Fprintf(w, "  target %-30s %s %5g %-6s %10s  %s\n", strings.TrimSpace(t.Label), op, t.Bound, t.Unit, val, verdict)
	}
	fmt.Fprintf(w, "  %d of %d targets met\n", met, len(Targets))
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
