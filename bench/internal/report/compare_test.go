package report

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"flotilla.dev/bench/internal/procmem"
	"flotilla.dev/bench/internal/stats"
)

func TestCompareRatiosAndFloorTotal(t *testing.T) {
	a := New("flotilla")
	a.Ops["podstart.total"] = stats.Summary{N: 20, P50: 60}
	a.Ops["exec_sync"] = stats.Summary{N: 0, Errors: 50, Sample: []string{"unimplemented"}}
	a.Values["density.pods_per_s"] = 30
	a.Values["density.vs_floor"] = 0.9
	a.Memory["daemons.idle"] = procmem.Usage{Procs: 4, PSSKiB: 40 * 1024}
	b := New("containerd")
	b.Ops["podstart.total"] = stats.Summary{N: 20, P50: 120}
	b.Ops["exec_sync"] = stats.Summary{N: 50, P50: 20}
	b.Values["density.pods_per_s"] = 15
	b.Memory["daemons.idle"] = procmem.Usage{Procs: 1, PSSKiB: 80 * 1024}
	b.Unsupported["event.started"] = "Unimplemented"
	f := New("floor")
	f.Ops["floor.runc_total"] = stats.Summary{N: 20, P50: 37}
	f.Ops["floor.netns_cni_add"] = stats.Summary{N: 20, P50: 13}

	// Through the JSON files, as bench.sh does.
	dir := t.TempDir()
	var rs []*Result
	for _, r := range []*Result{a, b, f} {
		p := filepath.Join(dir, r.Name+".json")
		if err := r.Write(p); err != nil {
			t.Fatal(err)
		}
		back, err := Read(p)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, back)
	}
	var out bytes.Buffer
	Compare(&out, rs)
	rows := map[string][]string{}
	for _, l := range strings.Split(out.String(), "\n") {
		for _, m := range Metrics {
			if strings.HasPrefix(l, m.Label+" ") {
				rows[strings.TrimSpace(m.Label)] = strings.Fields(l[len(m.Label):])
			}
		}
	}
	check := func(label string, want ...string) {
		t.Helper()
		got := rows[label]
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: got %q, want %q\n%s", label, got, want, out.String())
		}
	}
	// Floor total = runc 37 + netns/CNI 13; ratios flotilla/containerd and flotilla/floor.
	check("pod start total p50", "ms", "60.00", "120.00", "50.00", "0.50x", "1.20x")
	check("density pods/s (c=8)", "pods/s", "30.00", "15.00", "-", "2.00x", "-")
	// A ratio row is not divided again.
	check("density / floor just before", "x", "0.90", "-", "-", "-", "-")
	check("daemons PSS idle", "MiB", "40.00", "80.00", "-", "0.50x", "-")
	// A row whose calls all failed shows no number and no ratio.
	check("ExecSync echo p50", "ms", "-", "20.00", "-", "-", "-")
	if !strings.Contains(out.String(), "containerd: event.started unsupported: Unimplemented") ||
		!strings.Contains(out.String(), "flotilla: 50 failed calls") {
		t.Errorf("unsupported scenarios and failed calls must be listed:\n%s", out.String())
	}
}

// Density rounds: medians, the slowest and fastest rate, and no key for a
// series without rounds.
func TestSetDensityRounds(t *testing.T) {
	r := New("x")
	r.SetDensityRounds([]float64{30, 20, 40}, []float64{1000, 1500, 750}, nil)
	for k, want := range map[string]float64{"density.rounds": 3, "density.pods_per_s": 30,
		"density.pods_per_s.min": 20, "density.pods_per_s.max": 40, "density.wall_ms": 1000} {
		if got := r.Values[k]; got != want {
			t.Errorf("%s = %v, want %v", k, got, want)
		}
	}
	if v, ok := r.Values["density.cpu_ms_per_pod"]; ok {
		t.Errorf("density.cpu_ms_per_pod = %v without a CPU reading", v)
	}
}

func TestPrintTargets(t *testing.T) {
	r := New("flotilla")
	r.Ops["podstart.total"] = stats.Summary{N: 20, P50: 64.9}             // <= 65: met
	r.Values["podstart.vs_paired_floor"] = 1.31                           // <= 1.3: missed
	r.Values["density.pods_per_s"] = 30                                   // >= 30: met
	r.Values["density.per_pod_pss_mib"] = 0.11                            // met
	r.Memory["daemons.idle"] = procmem.Usage{Procs: 4, PSSKiB: 51 * 1024} // 51 MiB: missed
	r.Ops["exec_sync"] = stats.Summary{N: 50, P50: 2.5}                   // met
	r.Unsupported["event.started"] = "Unimplemented"                      // not measured
	var out bytes.Buffer
	PrintTargets(&out, r)
	want := map[string]string{
		"pod start total p50":          "met",
		"pod start / paired floor p50": "missed",
		"density pods/s (c=8)":         "met",
		"per-pod PSS":                  "met",
		"daemons PSS idle":             "missed",
		"ExecSync echo p50":            "met",
		"STARTED event latency p50":    "not measured",
	}
	lines := strings.Split(out.String(), "\n")
	for label, verdict := range want {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), "target "+label+" ") {
				found = true
				if !strings.HasSuffix(l, "  "+verdict) {
					t.Errorf("%s: want %q in %q", label, verdict, l)
				}
			}
		}
		if !found {
			t.Errorf("no line for %s:\n%s", label, out.String())
		}
	}
	if !strings.Contains(out.String(), "4 of 7 targets met") {
		t.Errorf("want 4 of 7 met:\n%s", out.String())
	}

	// A lower bound missed by a little.
	r.Values["density.pods_per_s"] = 29.9
	out.Reset()
	PrintTargets(&out, r)
	if !strings.Contains(out.String(), "29.90  missed") || !strings.Contains(out.String(), "3 of 7 targets met") {
		t.Errorf("density 29.9 against >= 30: want missed, 3 of 7 met:\n%s", out.String())
	}
}
