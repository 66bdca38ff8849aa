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
// runc create + start of a container joining that namespace. It records
// each pod's start time in rec (when not nil) and returns how many pods
// started, the window from the first start to the last pod running and the
// machine's busy CPU time in it, then removes everything (problems doing so
// go to res).
func densityFloor(ctx context.Context, o Options, tmp string, res *report.Result, rec *stats.Recorder) (densityRun, error) {
	ps, err := openPods(ctx, o, filepath.Join(tmp, "density"))
	if err != nil {
		return densityRun{}, err
	}
	defer ps.close(res) // also after a failure or an interrupt
	pods := make([]*floorPod, o.Density)
	for i := range pods {
		// The bundles are written before the clock starts, as for the
		// sequential floor: the container joins the pod's namespace.
		if pods[i], err = ps.prepare(); err != nil {
			return densityRun{}, err
		}
	}
	var (
		mu  sync.Mutex
		run densityRun
	)
	cpu0, cpuErr := cpustat.Machine("/proc")
	t0 := time.Now()
	parallel.Run(ctx, o.Concurrency, len(pods), func(i int) {
		t := time.Now()
		err := ps.start(ctx, pods[i])
		d := time.Since(t)
		if rec != nil {
			rec.Observe(d, err)
		}
		mu.Lock()
		if err != nil {
			run.errors++
			run.err = err
		} else {
			run.n++
		}
		mu.Unlock()
	})
	run.window = [2]time.Time{t0, time.Now()}
	if cpu1, err := cpustat.Machine("/proc"); err == nil && cpuErr == nil {
		run.cpu = cpu1 - cpu0
	} else {
		res.Problem("density floor: CPU of the machine: %v", errors.Join(cpuErr, err))
	}
	return run, nil
}

// densityRun is what one density floor measured.
type densityRun struct {
	n, errors int   // pods started, pods failed
	err       error // one of the failures
	window    [2]time.Time
	cpu       time.Duration // the machine's, busy in window
}

func (d densityRun) podsPerS() float64 {
	return float64(d.n) / d.window[1].Sub(d.window[0]).Seconds()
}

func (d densityRun) cpuMsPerPod() float64 {
	return float64(d.cpu.Microseconds()) / 1000 / float64(d.n)
}

// recordDensity records the density floor in res: density.pods (per
// round), floor.density_pod (the pods of every round) and, when every pod of
// a round started, the rounds' medians of density.pods_per_s (the same key
// as a CRI runtime's density), density.wall_ms and density.cpu_ms_per_pod,
// with density.rounds and the slowest and fastest round's rate; its windows are each round's
// ("density.1", ...) and the last round's ("density"), as a CRI runtime's,
// to match a profile of the same minutes.
func recordDensity(ctx context.Context, o Options, tmp string, res *report.Result) error {
	var all stats.Recorder
	var rate, wall, cpu []float64
	var err error
	res.Values["density.pods"] = float64(o.Density)
	for k := 0; k < max(o.DensityRounds, 1) && ctx.Err() == nil; k++ {
		var run densityRun
		run, err = densityFloor(ctx, o, filepath.Join(tmp, fmt.Sprintf("round%d", k)), res, &all)
		if err != nil {
			break // the rounds before it still count
		}
		res.SetWindow(fmt.Sprintf("density.%d", k+1), run.window)
		res.SetWindow("density", run.window)
		if run.n > 0 && run.errors == 0 {
			rate = append(rate, run.podsPerS())
			wall = append(wall, float64(run.window[1].Sub(run.window[0]).Microseconds())/1000)
			if run.cpu > 0 {
				cpu = append(cpu, run.cpuMsPerPod())
			}
		}
	}
	res.Ops["floor.density_pod"] = all.Summary()
	res.SetDensityRounds(rate, wall, cpu)
	return err
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
	run, err := densityFloor(ctx, o, tmp, res, nil)
	if err != nil {
		return 0, 0, err
	}
	if run.n == 0 || run.errors > 0 {
		return 0, 0, fmt.Errorf("density floor: %d of %d pods failed: %v", run.errors, run.n+run.errors, run.err)
	}
	return run.podsPerS(), run.cpuMsPerPod(), nil
}
