package scenario

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"flotilla.dev/bench/internal/cpustat"
	"flotilla.dev/bench/internal/parallel"
	"flotilla.dev/bench/internal/procmem"
	"flotilla.dev/bench/internal/stats"
)

// Density starts o.Density pods at o.Concurrency, measures the wall time to
// all started, the memory of the daemons and of the per-pod processes, then
// ExecSync and List* latencies with the pods present, and finally the
// concurrent teardown.
func (r *Runner) Density(ctx context.Context) {
	if r.o.DensityFloor != nil {
		if v, cpu, err := r.o.DensityFloor(ctx); err != nil {
			r.res.Problem("density floor: %v", err)
		} else {
			r.res.Values["floor.density_pods_per_s"] = v
			if cpu > 0 {
				r.res.Values["floor.density_cpu_ms_per_pod"] = cpu
			}
		}
	}
	recs := map[string]*stats.Recorder{}
	var mu sync.Mutex
	pods := make([]*pod, r.o.Density)
	cpu := r.startCPU()
	t0 := time.Now()
	r.parallel(ctx, len(pods), func(i int) {
		p := r.startPod(ctx)
		mu.Lock()
		record(recs, "density", p)
		pods[i] = p
		mu.Unlock()
	})
	wall := time.Since(t0)
	machine, daemons, byName := cpu()
	r.window("density", t0)
	var running []*pod
	for _, p := range pods {
		if p != nil && p.err == nil {
			running = append(running, p)
		}
	}
	r.res.Values["density.pods"] = float64(r.o.Density)
	r.res.Values["density.running"] = float64(len(running))
	r.res.Values["density.wall_ms"] = ms(wall)
	if len(running) > 0 {
		r.res.Values["density.pods_per_s"] = float64(len(running)) / wall.Seconds()
		if machine > 0 {
			r.res.Values["density.cpu_ms_per_pod"] = ms(machine) / float64(len(running))
		}
		if daemons > 0 {
			r.res.Values["density.daemons_cpu_ms_per_pod"] = ms(daemons) / float64(len(running))
			for name, d := range byName {
				r.res.Values["density.daemons_cpu_ms_per_pod."+name] = ms(d) / float64(len(running))
			}
		}
	}

	r.MeasureDaemons("loaded")
	if u, err := measure(r.o.PerPod); err != nil {
		r.res.Problem("memory of per-pod processes: %v", err)
	} else if len(running) > 0 {
		r.res.Memory["per_pod.all"] = u
		r.res.Values["density.per_pod_pss_mib"] = u.PSSMiB() / float64(len(running))
		r.res.Values["density.per_pod_rss_mib"] = u.RSSMiB() / float64(len(running))
		r.res.Values["density.per_pod_procs"] = float64(u.Procs) / float64(len(running))
	}

	if len(running) > 0 {
		r.execSync(ctx, running[0])
	}
	r.lists(ctx)

	t1 := time.Now()
	r.parallel(ctx, len(pods), func(i int) {
		if pods[i] != nil {
			r.teardown(ctx, recs, &mu, pods[i])
		}
	})
	r.res.Values["density.teardown_wall_ms"] = ms(time.Since(t1))
	for k, rec := range recs {
		if strings.HasPrefix(k, "teardown.") {
			k = "density." + k // concurrent teardown, apart from the sequential one
		}
		r.res.Ops[k] = rec.Summary()
	}
}

// parallel runs f(0..n-1) on o.Concurrency workers; stops handing out work
// when ctx ends.
func (r *Runner) parallel(ctx context.Context, n int, f func(int)) {
	parallel.Run(ctx, r.o.Concurrency, n, f)
}

func (r *Runner) execSync(ctx context.Context, p *pod) {
	var rec stats.Recorder
	for i := 0; i < r.o.ExecCalls && ctx.Err() == nil; i++ {
		cctx, cancel := r.call(ctx)
		t := time.Now()
		res, err := r.rt.ExecSync(cctx, &cri.ExecSyncRequest{ContainerId: p.ctrID, Cmd: []string{"echo", "hi"}, Timeout: 10})
		d := time.Since(t)
		cancel()
		switch {
		case err != nil:
			rec.Fail(fmt.Errorf("ExecSync: %w", err))
		case res.ExitCode != 0 || string(res.Stdout) != "hi\n":
			rec.Fail(fmt.Errorf("ExecSync echo hi: exit %d, stdout %q, stderr %q", res.ExitCode, res.Stdout, res.Stderr))
		default:
			rec.Add(d)
		}
	}
	r.res.Ops["exec_sync"] = rec.Summary()
}

func (r *Runner) lists(ctx context.Context) {
	calls := map[string]func(context.Context) error{
		"list.containers": func(c context.Context) error {
			_, err := r.rt.ListContainers(c, &cri.ListContainersRequest{})
			return err
		},
		"list.pod_sandbox": func(c context.Context) error {
			_, err := r.rt.ListPodSandbox(c, &cri.ListPodSandboxRequest{})
			return err
		},
		"list.container_stats": func(c context.Context) error {
			_, err := r.rt.ListContainerStats(c, &cri.ListContainerStatsRequest{})
			return err
		},
	}
	for k, f := range calls {
		var rec stats.Recorder
		for i := 0; i < r.o.ListCalls && ctx.Err() == nil; i++ {
			cctx, cancel := r.call(ctx)
			t := time.Now()
			err := f(cctx)
			rec.Observe(time.Since(t), err)
			cancel()
		}
		r.res.Ops[k] = rec.Summary()
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// startCPU reads the machine's busy CPU time and the daemons' own (their
// threads', not their children's) and returns a function giving how much of
// each was used since, the daemons' also by process name; a reading that
// fails is reported and gives 0.
func (r *Runner) startCPU() func() (machine, daemons time.Duration, byName map[string]time.Duration) {
	var daemons []*procmem.Proc
	if procs, err := procmem.Snapshot("/proc"); err != nil {
		r.res.Problem("CPU of daemons: %v", err)
	} else {
		daemons = r.o.Daemons.Select(procs)
	}
	read := func() map[string]time.Duration {
		m := map[string]time.Duration{}
		for _, p := range daemons {
			m[p.Name] += cpustat.Proc("/proc", p.PID)
		}
		return m
	}
	m0, err := cpustat.Machine("/proc")
	if err != nil {
		r.res.Problem("CPU of the machine: %v", err)
	}
	d0 := read()
	return func() (time.Duration, time.Duration, map[string]time.Duration) {
		byName := read()
		var d time.Duration
		for name := range byName {
			byName[name] = max(byName[name]-d0[name], 0) // 0 if it died meanwhile
			d += byName[name]
		}
		if err != nil {
			return 0, d, byName
		}
		m1, err := cpustat.Machine("/proc")
		if err != nil {
			r.res.Problem("CPU of the machine: %v", err)
			return 0, d, byName
		}
		return m1 - m0, d, byName
	}
}
