package floor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"flotilla.dev/bench/internal/report"
	"flotilla.dev/bench/internal/stats"
)

// densityFloor starts o.Density pods, o.Concurrency at a time, each the
// least a runtime does for one: a pinned network namespace, CNI ADD, and
// runc create + start of a container joining that namespace. It returns the
// pods' start times and the wall time from the first start to the last pod
// running, then removes everything (problems doing so go to res).
func densityFloor(ctx context.Context, o Options, tmp string, res *report.Result) (stats.Summary, time.Duration, error) {
	ps, err := openPods(ctx, o, filepath.Join(tmp, "density"))
	if err != nil {
		return stats.Summary{}, 0, err
	}
	defer ps.close(res) // also after a failure or an interrupt
	all := make([]*floorPod, o.Density)
	for i := range all {
		// The bundles are written before the clock starts, as for the
		// sequential floor: the container joins the pod's namespace.
		if all[i], err = ps.prepare(); err != nil {
			return stats.Summary{}, 0, err
		}
	}
	var (
		mu  sync.Mutex
		rec stats.Recorder
		wg  sync.WaitGroup
	)
	work := make(chan *floorPod)
	t0 := time.Now()
	for range max(o.Concurrency, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				t := time.Now()
				err := ps.start(ctx, p)
				mu.Lock()
				rec.Observe(time.Since(t), err)
				mu.Unlock()
			}
		}()
	}
	for _, p := range all {
		if ctx.Err() != nil {
			break
		}
		work <- p
	}
	close(work)
	wg.Wait()
	return rec.Summary(), time.Since(t0), nil
}

// recordDensity records the density floor in res: floor.density_pod and,
// when every pod started, density.pods_per_s (the same key as a CRI
// runtime's density) and density.wall_ms.
func recordDensity(ctx context.Context, o Options, tmp string, res *report.Result) error {
	sum, wall, err := densityFloor(ctx, o, tmp, res)
	if err != nil {
		return err
	}
	res.Ops["floor.density_pod"] = sum
	if sum.N > 0 && sum.Errors == 0 {
		res.Values["density.pods_per_s"] = float64(sum.N) / wall.Seconds()
		res.Values["density.wall_ms"] = float64(wall.Microseconds()) / 1000
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
// the pods per second (for a CRI run to measure it right before its own
// density; problems removing its pods go to res).
func Density(ctx context.Context, o Options, res *report.Result) (float64, error) {
	tmp, err := os.MkdirTemp(o.StateDir, "flotbench-floor-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	sum, wall, err := densityFloor(ctx, o, tmp, res)
	if err != nil {
		return 0, err
	}
	if sum.N == 0 || sum.Errors > 0 {
		return 0, fmt.Errorf("density floor: %d of %d pods failed: %v", sum.Errors, sum.N+sum.Errors, sum.Sample)
	}
	return float64(sum.N) / wall.Seconds(), nil
}
