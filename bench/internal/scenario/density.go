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
	"flotilla.dev/bench/internal/report"
	"flotilla.dev/bench/internal/stats"
)

// Density starts o.Density pods at o.Concurrency, measures the wall time to
// all started, the memory of the daemons and of the per-pod processes, then
// ExecSync and List* latencies with the pods present, and finally the
// concurrent teardown. With o.DensityRounds > 1 the start is measured that
// many times (all but the last round's pods removed again, concurrently), each
// round right after its own floor round, and the rates are the rounds'
// medians: one round lasts about a second, which a busy moment of the
// machine can slow by a third, floor and runtime alike.
func (r *Runner) Density(ctx context.Context) {
	recs := map[string]*stats.Recorder{}
	var mu sync.Mutex
	var rounds densityRounds
	var pods []*pod
	n := max(r.o.DensityRounds, 1)
	for k := 1; k <= n && ctx.Err() == nil; k++ {
		floorRate, floorCPU := 0.0, 0.0
		if r.o.DensityFloor != nil {
			var err error
			if floorRate, floorCPU, err = r.o.DensityFloor(ctx); err != nil {
				r.res.Problem("density floor: %v", err)
			}
		}
		pods = make([]*pod, r.o.Density)
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
		r.window(fmt.Sprintf("density.%d", k), t0) // each round's, for profiles of all rounds
		r.window("density", t0)                    // the last round's
		running := len(started(pods))
		rounds.add(running, wall, machine, daemons, byName, floorRate, floorCPU)
		if r.o.Log != nil && running > 0 {
			r.o.Log("density round %d/%d: %d pods running, %.1f pods/s, %.1f ms of the machine's CPU per pod (floor right before: %.1f pods/s)",
				k, n, running, float64(running)/wall.Seconds(), ms(machine)/float64(running), floorRate)
		}
		if k < n {
			rounds.teardown = append(rounds.teardown, ms(r.teardownAll(ctx, recs, &mu, pods)))
		}
	}
	rounds.record(r.res)
	running := started(pods)
	r.res.Values["density.pods"] = float64(r.o.Density)
	r.res.Values["density.running"] = float64(len(running))

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

	rounds.teardown = append(rounds.teardown, ms(r.teardownAll(ctx, recs, &mu, pods)))
	r.res.Values["density.teardown_wall_ms"] = stats.Median(rounds.teardown)
	for k, rec := range recs {
		if strings.HasPrefix(k, "teardown.") {
			k = "density." + k // concurrent teardown, apart from the sequential one
		}
		r.res.Ops[k] = rec.Summary()
	}
}

// started returns the pods that started without an error.
func started(pods []*pod) []*pod {
	var out []*pod
	for _, p := range pods {
		if p != nil && p.err == nil {
			out = append(out, p)
		}
	}
	return out
}

// teardownAll removes pods, o.Concurrency at a time, and returns the wall
// time it took.
func (r *Runner) teardownAll(ctx context.Context, recs map[string]*stats.Recorder, mu *sync.Mutex, pods []*pod) time.Duration {
	t := time.Now()
	r.parallel(ctx, len(pods), func(i int) {
		if pods[i] != nil {
			r.teardown(ctx, recs, mu, pods[i])
		}
	})
	return time.Since(t)
}

// densityRounds collects what each density round measured.
type densityRounds struct {
	rate, cpu, daemons, wall []float64 // per round with a pod running
	byName                   map[string][]float64
	vsFloor                  []float64 // rate over the floor's right before
	floorRate, floorCPU      []float64
	teardown                 []float64 // wall ms
}

func (d *densityRounds) add(running int, wall, machine, daemons time.Duration, byName map[string]time.Duration, floorRate, floorCPU float64) {
	if floorRate > 0 {
		d.floorRate = append(d.floorRate, floorRate)
	}
	if floorCPU > 0 {
		d.floorCPU = append(d.floorCPU, floorCPU)
	}
	if running == 0 {
		return
	}
	rate := float64(running) / wall.Seconds()
	d.rate = append(d.rate, rate)
	d.wall = append(d.wall, ms(wall))
	if floorRate > 0 {
		d.vsFloor = append(d.vsFloor, rate/floorRate)
	}
	if machine > 0 {
		d.cpu = append(d.cpu, ms(machine)/float64(running))
	}
	if daemons > 0 {
		d.daemons = append(d.daemons, ms(daemons)/float64(running))
		if d.byName == nil {
			d.byName = map[string][]float64{}
		}
		for name, t := range byName {
			d.byName[name] = append(d.byName[name], ms(t)/float64(running))
		}
	}
}

// record puts the medians of the rounds into res (keys with no round left
// out), and the slowest and fastest round's rate.
func (d *densityRounds) record(res *report.Result) {
	res.SetDensityRounds(d.rate, d.wall, d.cpu)
	res.SetMedian("density.daemons_cpu_ms_per_pod", d.daemons)
	for name, xs := range d.byName {
		res.SetMedian("density.daemons_cpu_ms_per_pod."+name, xs)
	}
	res.SetMedian("density.vs_floor", d.vsFloor)
	res.SetMedian("floor.density_pods_per_s", d.floorRate)
	res.SetMedian("floor.density_cpu_ms_per_pod", d.floorCPU)
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
