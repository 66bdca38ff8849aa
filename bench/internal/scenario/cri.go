// Package scenario drives a CRI endpoint through the cri-api client: pod
// start, density, ExecSync, List* and the STARTED event. Every pod it creates
// is tracked and removed, even when a scenario fails or is interrupted.
package scenario

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"flotilla.dev/bench/internal/procmem"
	"flotilla.dev/bench/internal/report"
	"flotilla.dev/bench/internal/stats"
)

// Options of a CRI run.
type Options struct {
	Endpoint      string // unix:///path/to/cri.sock
	Image         string // busybox image with sleep and echo
	WorkDir       string // pod log directories; created
	RunID         string // unique per run: pod names and uids carry it
	Pods          int    // pod start: pods started one after another
	Density       int    // density: pods started concurrently
	DensityRounds int    // density: times the start is measured; the rates are the medians
	Concurrency   int
	SharePID      bool // pods share one PID namespace (shareProcessNamespace: true)
	ExecCalls     int
	ListCalls     int
	CallTimeout   time.Duration
	Daemons       procmem.Selector                 // the runtime's daemons
	PerPod        procmem.Selector                 // processes that exist per pod (shims, pause)
	Log           func(format string, args ...any) // progress lines (each density round); nil: none
	// Floor, when set, starts one floor pod (netns + CNI ADD + runc
	// create + start) before each sequential pod start, and
	// DensityFloor measures the floor's density right before the
	// runtime's (pods per second, and the machine's CPU per pod): both then
	// run on the same machine in the same minute. PodStart closes Floor (its
	// pods are gone before density).
	Floor        PodStarter
	DensityFloor func(ctx context.Context) (podsPerS, cpuMsPerPod float64, err error)
}

// Runner runs the scenarios against one endpoint.
type Runner struct {
	o    Options
	conn *grpc.ClientConn
	rt   cri.RuntimeServiceClient
	img  cri.ImageServiceClient
	res  *report.Result

	mu   sync.Mutex
	pods map[string]bool // pods created and not yet removed
	seq  int
}

// Dial connects to the endpoint; it fails when Version does not answer.
func Dial(ctx context.Context, o Options, res *report.Result) (*Runner, error) {
	conn, err := grpc.NewClient(o.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", o.Endpoint, err)
	}
	r := &Runner{o: o, conn: conn, rt: cri.NewRuntimeServiceClient(conn), img: cri.NewImageServiceClient(conn), res: res, pods: map[string]bool{}}
	cctx, cancel := context.WithTimeout(ctx, o.CallTimeout)
	defer cancel()
	v, err := r.rt.Version(cctx, &cri.VersionRequest{})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("version of %s: %w", o.Endpoint, err)
	}
	res.Endpoint = o.Endpoint
	res.Runtime = v.RuntimeName + " " + v.RuntimeVersion
	return r, os.MkdirAll(o.WorkDir, 0o755)
}

// Close removes every pod still tracked and closes the connection. It uses
// its own context so it runs after an interrupt.
func (r *Runner) Close() {
	r.mu.Lock()
	left := make([]string, 0, len(r.pods))
	for id := range r.pods {
		left = append(left, id)
	}
	r.mu.Unlock()
	for _, id := range left {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := r.rt.StopPodSandbox(ctx, &cri.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			r.res.Problem("cleanup: stop pod %s: %v", id, err)
		}
		if _, err := r.rt.RemovePodSandbox(ctx, &cri.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			r.res.Problem("cleanup: remove pod %s: %v", id, err)
		} else {
			r.untrack(id)
		}
		cancel()
	}
	r.conn.Close()
}

// PodStarter starts floor pods one at a time (floor.Paired).
type PodStarter interface {
	// Start starts one pod and returns how long that took.
	Start(ctx context.Context) (time.Duration, error)
	// Close removes every pod started; problems go to res.
	Close(res *report.Result)
}

// window records when scenario ran: from t0 to now.
func (r *Runner) window(scenario string, t0 time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.SetWindow(scenario, [2]time.Time{t0, time.Now()})
}

func (r *Runner) track(id string) { r.mu.Lock(); r.pods[id] = true; r.mu.Unlock() }

func (r *Runner) untrack(id string) { r.mu.Lock(); delete(r.pods, id); r.mu.Unlock() }

func (r *Runner) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.o.CallTimeout)
}

// EnsureImage pulls the image when the runtime does not have it (untimed).
func (r *Runner) EnsureImage(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	st, err := r.img.ImageStatus(cctx, &cri.ImageStatusRequest{Image: &cri.ImageSpec{Image: r.o.Image}})
	if err == nil && st.Image != nil {
		return nil
	}
	if _, err := r.img.PullImage(cctx, &cri.PullImageRequest{Image: &cri.ImageSpec{Image: r.o.Image}}); err != nil {
		return fmt.Errorf("pull %s: %w", r.o.Image, err)
	}
	return nil
}

// pod is one benchmark pod with its container.
type pod struct {
	cfg         *cri.PodSandboxConfig
	id, ctrID   string
	runDur      time.Duration
	createDur   time.Duration
	startDur    time.Duration
	startedAt   time.Time // when StartContainer returned
	err         error
	failedPhase string
}

func (r *Runner) podConfig() *cri.PodSandboxConfig {
	r.mu.Lock()
	r.seq++
	n := r.seq
	r.mu.Unlock()
	name := fmt.Sprintf("flotbench-%s-%d", r.o.RunID, n)
	return &cri.PodSandboxConfig{
		Metadata:     &cri.PodSandboxMetadata{Name: name, Uid: name, Namespace: "flotbench"},
		Hostname:     fmt.Sprintf("fb%d", n),
		LogDirectory: filepath.Join(r.o.WorkDir, "logs", name),
		Labels:       map[string]string{"flotbench": r.o.RunID},
		Linux: &cri.LinuxPodSandboxConfig{
			SecurityContext: &cri.LinuxSandboxSecurityContext{NamespaceOptions: r.namespaces()},
		},
	}
}

// namespaces is what the kubelet sends for a pod without hostNetwork,
// hostIPC or hostPID: the pod's own network and IPC namespaces, and a PID
// namespace per container unless shareProcessNamespace is set. (An unset
// NamespaceOption means PID mode POD, which the kubelet never sends by
// default; runtimes start a pause process for it.)
func (r *Runner) namespaces() *cri.NamespaceOption {
	pid := cri.NamespaceMode_CONTAINER
	if r.o.SharePID {
		pid = cri.NamespaceMode_POD
	}
	return &cri.NamespaceOption{Network: cri.NamespaceMode_POD, Ipc: cri.NamespaceMode_POD, Pid: pid}
}

// startPod runs a pod, creates and starts its sleep container, timing each
// phase. A failed phase ends the pod's start; the pod stays tracked for
// cleanup when it was created.
func (r *Runner) startPod(ctx context.Context) *pod {
	p := &pod{cfg: r.podConfig()}
	if err := os.MkdirAll(p.cfg.LogDirectory, 0o755); err != nil {
		p.err, p.failedPhase = err, "run_pod"
		return p
	}
	cctx, cancel := r.call(ctx)
	t0 := time.Now()
	rp, err := r.rt.RunPodSandbox(cctx, &cri.RunPodSandboxRequest{Config: p.cfg})
	p.runDur = time.Since(t0)
	cancel()
	if err != nil {
		p.err, p.failedPhase = fmt.Errorf("RunPodSandbox: %w", err), "run_pod"
		return p
	}
	p.id = rp.PodSandboxId
	r.track(p.id)
	cctx, cancel = r.call(ctx)
	t1 := time.Now()
	cc, err := r.rt.CreateContainer(cctx, &cri.CreateContainerRequest{
		PodSandboxId: p.id,
		Config: &cri.ContainerConfig{
			Metadata: &cri.ContainerMetadata{Name: "sleep"},
			Image:    &cri.ImageSpec{Image: r.o.Image},
			Command:  []string{"sleep", "3600"},
			LogPath:  "sleep.log",
			Linux: &cri.LinuxContainerConfig{
				SecurityContext: &cri.LinuxContainerSecurityContext{NamespaceOptions: r.namespaces()},
			},
		},
		SandboxConfig: p.cfg,
	})
	p.createDur = time.Since(t1)
	cancel()
	if err != nil {
		p.err, p.failedPhase = fmt.Errorf("CreateContainer: %w", err), "create"
		return p
	}
	p.ctrID = cc.ContainerId
	cctx, cancel = r.call(ctx)
	t2 := time.Now()
	_, err = r.rt.StartContainer(cctx, &cri.StartContainerRequest{ContainerId: p.ctrID})
	p.startedAt = time.Now()
	p.startDur = p.startedAt.Sub(t2)
	cancel()
	if err != nil {
		p.err, p.failedPhase = fmt.Errorf("StartContainer: %w", err), "start"
	}
	return p
}

// record adds the pod's phases to the recorders named prefix.<phase>.
func record(recs map[string]*stats.Recorder, prefix string, p *pod) {
	rec := func(k string) *stats.Recorder {
		k = prefix + "." + k
		if recs[k] == nil {
			recs[k] = &stats.Recorder{}
		}
		return recs[k]
	}
	phases := []struct {
		name string
		d    time.Duration
	}{{"run_pod", p.runDur}, {"create", p.createDur}, {"start", p.startDur}}
	for _, ph := range phases {
		if p.failedPhase == ph.name {
			rec(ph.name).Fail(p.err)
			break
		}
		rec(ph.name).Add(ph.d)
	}
	if p.err != nil {
		rec("total").Fail(p.err)
	} else {
		rec("total").Add(p.runDur + p.createDur + p.startDur)
	}
}

// teardown stops the container, stops and removes the pod, timing each.
func (r *Runner) teardown(ctx context.Context, recs map[string]*stats.Recorder, mu *sync.Mutex, p *pod) {
	if p.id == "" {
		return
	}
	obs := func(k string, d time.Duration, err error) {
		mu.Lock()
		rec := recs[k]
		if rec == nil {
			rec = &stats.Recorder{}
			recs[k] = rec
		}
		mu.Unlock()
		rec.Observe(d, err)
	}
	if p.ctrID != "" {
		cctx, cancel := r.call(ctx)
		t := time.Now()
		_, err := r.rt.StopContainer(cctx, &cri.StopContainerRequest{ContainerId: p.ctrID, Timeout: 0})
		obs("teardown.stop_container", time.Since(t), err)
		cancel()
	}
	cctx, cancel := r.call(ctx)
	t := time.Now()
	_, err := r.rt.StopPodSandbox(cctx, &cri.StopPodSandboxRequest{PodSandboxId: p.id})
	obs("teardown.stop_pod", time.Since(t), err)
	cancel()
	cctx, cancel = r.call(ctx)
	t = time.Now()
	_, err = r.rt.RemovePodSandbox(cctx, &cri.RemovePodSandboxRequest{PodSandboxId: p.id})
	obs("teardown.remove_pod", time.Since(t), err)
	cancel()
	if err == nil {
		r.untrack(p.id)
	}
}

func (r *Runner) store(recs map[string]*stats.Recorder) {
	for k, rec := range recs {
		r.res.Ops[k] = rec.Summary()
	}
}

// MeasureDaemons records the memory of the runtime's daemons under key.
func (r *Runner) MeasureDaemons(key string) {
	u, err := measure(r.o.Daemons)
	if err != nil {
		r.res.Problem("memory of daemons (%s): %v", key, err)
		return
	}
	if u.Procs == 0 {
		r.res.Problem("memory of daemons (%s): no process named %v in scope %q", key, r.o.Daemons.Names, r.o.Daemons.Scope)
	}
	r.res.Memory["daemons."+key] = u
}

func measure(s procmem.Selector) (procmem.Usage, error) {
	procs, err := procmem.Snapshot("/proc")
	if err != nil {
		return procmem.Usage{}, err
	}
	return procmem.Measure("/proc", s.Select(procs))
}
