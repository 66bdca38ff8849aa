package floor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"

	"flotilla.dev/bench/internal/report"
	"flotilla.dev/bench/internal/stats"
)

// densityFloor starts o.Density pods, o.Concurrency at a time, each the
// least a runtime does for one: a pinned network namespace, CNI ADD, and
// runc create + start of a container joining that namespace. It records the
// pods per second from the first start to the last pod running
// (density.pods_per_s, the same key as a CRI runtime's density), then
// removes everything.
func densityFloor(ctx context.Context, o Options, tmp string, res *report.Result) error {
	dir := filepath.Join(tmp, "density")
	nw, err := openNet(o, dir)
	if err != nil {
		return err
	}
	defer nw.close(res)
	rootfs, err := filepath.Abs(o.Rootfs)
	if err != nil {
		return err
	}
	state := filepath.Join(dir, "runc")
	spec, err := baseSpec(ctx, o.Runc, dir)
	if err != nil {
		return err
	}
	type pod struct {
		id, bundle, netns string
		rt                *libcni.RuntimeConf
		pinned, added     bool
		created           bool
	}
	pods := make([]*pod, o.Density)
	for i := range pods {
		id := fmt.Sprintf("flotbench-floor-%d-d%d", os.Getpid(), i)
		p := &pod{id: id, bundle: filepath.Join(dir, "bundles", id), netns: filepath.Join(dir, "netns", id)}
		p.rt = &libcni.RuntimeConf{ContainerID: id, NetNS: p.netns, IfName: "eth0"}
		// The bundles are written before the clock starts, as for the
		// sequential floor: the container joins the pod's namespace.
		setNetns(spec, p.netns)
		if err := writeSpec(spec, p.bundle, rootfs, id); err != nil {
			return err
		}
		pods[i] = p
	}
	if err := os.MkdirAll(filepath.Join(dir, "netns"), 0o755); err != nil {
		return err
	}
	var mu sync.Mutex
	teardown := func(p *pod) error {
		var errs []error
		out, err := os.CreateTemp(dir, "runc-*.out")
		if err != nil {
			return err
		}
		defer os.Remove(out.Name())
		defer out.Close()
		if p.created {
			errs = append(errs, runRunc(o.Runc, state, out, "delete", "--force", p.id))
		}
		if p.added {
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			errs = append(errs, nw.cni.DelNetworkList(cctx, nw.list, p.rt))
			cancel()
		}
		if p.pinned {
			errs = append(errs, removeNetns(p.netns))
		}
		return errors.Join(errs...)
	}
	defer func() { // also after a failure or an interrupt
		for _, p := range pods {
			if err := teardown(p); err != nil {
				res.Problem("density floor teardown of %s: %v", p.id, err)
			}
		}
	}()
	start := func(p *pod) error {
		out, err := os.CreateTemp(dir, "runc-*.out")
		if err != nil {
			return err
		}
		defer os.Remove(out.Name())
		defer out.Close()
		if err := newNetns(p.netns); err != nil {
			return err
		}
		mu.Lock()
		p.pinned = true
		mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err = nw.cni.AddNetworkList(cctx, nw.list, p.rt)
		cancel()
		mu.Lock()
		p.added = true // a failed ADD is undone with DEL too
		mu.Unlock()
		if err != nil {
			return err
		}
		err = runRunc(o.Runc, state, out, "create", "--bundle", p.bundle, p.id)
		mu.Lock()
		p.created = true
		mu.Unlock()
		if err != nil {
			return err
		}
		return runRunc(o.Runc, state, out, "start", p.id)
	}
	var rec stats.Recorder
	work := make(chan *pod)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range max(o.Concurrency, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range work {
				t := time.Now()
				err := start(p)
				mu.Lock()
				rec.Observe(time.Since(t), err)
				mu.Unlock()
			}
		}()
	}
	for _, p := range pods {
		if ctx.Err() != nil {
			break
		}
		work <- p
	}
	close(work)
	wg.Wait()
	wall := time.Since(t0)
	sum := rec.Summary()
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
