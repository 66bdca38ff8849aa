package floor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"flotilla.dev/bench/internal/cpustat"
	"flotilla.dev/bench/internal/parallel"
	"flotilla.dev/bench/internal/report"
	"flotilla.dev/bench/internal/stats"
)

// densityFloor starts o.Density pods, o.Concurrency at a time, each the
// least a runtime does for one: a pinned network namespace, CNI ADD, and
// runc create + start of a container joining that namespace. It returns the
// pods' start times, the window from the first start to the last pod
// running and the machine's busy CPU time in it, then removes everything
// (problems doing so go to res).
func densityFloor(ctx context.Context, o Options, tmp string, res *report.Result) (densityRun, error) {
	ps, err := openPods(ctx, o, filepath.Join(tmp, "density"))
	if err != nil {
		return densityRun{}, err
	}
	defer ps.close(res) // also after a failure or an interrupt
	all := make([]*floorPod, o.Density)
	for i := range all {
		// The bundles are written before the clock starts, as for the
		// sequential floor: the container joins the pod's namespace.
		if all[i], err = ps.prepare(); err != nil {
			return densityRun{}, err
		}
	}
	var (
		mu  sync.Mutex
		rec stats.Recorder
	)
	cpu0, cpuErr := cpustat.Machine("/proc")
	t0 := time.Now()
	parallel.Run(ctx, o.Concurrency, len(all), func(i int) {
		t := time.Now()
		err := ps.start(ctx, all[i])
		mu.Lock()
		rec.Observe(time.Since(t), err)
		mu.Unlock()
	})
	run := densityRun{sum: rec.Summary(), window: [2]time.Time{t0, time.Now()}}
	if cpu1, err := cpustat.Machine("/proc"); err == nil && cpuErr == nil {
		run.cpu = cpu1 - cpu0
	} else {
		res.Problem("density floor: CPU of the machine: %v", errors.Join(cpuErr, err))
	}
	return run, nil
}

// densityRun is what one density floor measured.
type densityRun struct {
	sum    stats.Summary
	window [2]time.Time
	cpu    time.Duration // the machine's, busy in window
}

func (d densityRun) podsPerS() float64 {
	return float64(d.sum.N) / d.window[1].Sub(d.window[0]).Seconds()
}

func (d densityRun) cpuMsPerPod() float64 {
	return float64(d.cpu.Microseconds()) / 1000 / float64(d.sum.N)
}

// recordDensity records the density floor in res: floor.density_pod and,
// when every pod started, density.pods_per_s (the same key as a CRI
// runtime's density), density.wall_ms and density.cpu_ms_per_pod; its
// window is "density", as a CRI runtime's, to match a profile of the same
// minutes.
func recordDensity(ctx context.Context, o Options, tmp string, res *report.Result) error {
	run, err := densityFloor(ctx, o, tmp, res)
	if err != nil {
		return err
	}
	res.SetWindow("density", run.window)
	res.Ops["floor.density_pod"] = run.sum
	if run.sum.N > 0 && run.sum.Errors == 0 {
		res.Values["density.pods_per_s"] = run.podsPerS()
		res.Values["density.wall_ms"] = float64(run.window[1].Sub(run.window[0]).Microseconds()) / 1000
		if run.cpu > 0 {
			res.Values["density.cpu_ms_per_pod"] = run.cpuMsPerPod()
		}
	}
	return nil
}

// setNetns makes the spec's network namespace the one pinned at path.
func setNetns(spec map[string]any, path string) {
	linux := spec["linux"].(map[string]any)
	nss, _ := linux["namespaces"].([]any)
	out := []any{map[string]any{"type": "network", "path": path}}
	for _, ns := range nss {
		if m, ok := ns.(map[string]any); ok && m["type"] == "network" {
			continue
		}
		out = append(out, ns)
	}
	linux["namespaces"] = out
}

// Density measures the density floor alone, under o.StateDir, and returns
// the pods per second and the machine's busy CPU per pod (for a CRI run to
// measure it right before its own density; problems removing its pods go
// to res).
func Density(ctx context.Context, o Options, res *report.Result) (podsPerS, cpuMsPerPod float64, err error) {
	tmp, err := os.MkdirTemp(o.StateDir, "flotbench-floor-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(tmp)
	run, err := densityFloor(ctx, o, tmp, res)
	if err != nil {
		return 0, 0, err
	}
	if run.sum.N == 0 || run.sum.Errors > 0 {
		return 0, 0, fmt.Errorf("density floor: %d of %d pods failed: %v", run.sum.Errors, run.sum.N+run.sum.Errors, run.sum.Sample)
	}
	return run.podsPerS(), run.cpuMsPerPod(), nil
}
