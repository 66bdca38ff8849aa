package scenario

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	cri "k8s.io/cri-api/pkg/apis/runtime/v1"

	"flotilla.dev/bench/internal/stats"
)

// eventWait bounds how long STARTED events may trail the last start.
const eventWait = 2 * time.Second

// PodStart starts o.Pods pods one after another (run, create, start each
// timed; with o.Floor, each after one floor pod, and the median of the
// per-pair ratios recorded), watching GetContainerEvents for the STARTED
// events, then tears them down one after another (stop container, stop
// pod, remove pod) and closes o.Floor.
func (r *Runner) PodStart(ctx context.Context) {
	recs := map[string]*stats.Recorder{}
	ev := r.watchEvents(ctx)
	var pods []*pod
	var floorRec stats.Recorder
	var ratios []float64
	t0 := time.Now()
	for i := 0; i < r.o.Pods && ctx.Err() == nil; i++ {
		var fd time.Duration
		var ferr error
		if r.o.Floor != nil {
			fd, ferr = r.o.Floor.Start(ctx)
			floorRec.Observe(fd, ferr)
		}
		p := r.startPod(ctx)
		record(recs, "podstart", p)
		pods = append(pods, p)
		if r.o.Floor != nil && ferr == nil && p.err == nil {
			ratios = append(ratios, float64(p.runDur+p.createDur+p.startDur)/float64(fd))
		}
	}
	r.window("podstart", t0)
	if r.o.Floor != nil {
		r.res.Ops["floor.paired_pod"] = floorRec.Summary()
		if len(ratios) > 0 {
			sort.Float64s(ratios)
			r.res.Values["podstart.vs_paired_floor"] = stats.Percentile(ratios, 50)
		}
	}
	ev.finish(r, pods)
	var mu sync.Mutex
	for _, p := range pods {
		r.teardown(ctx, recs, &mu, p)
	}
	if r.o.Floor != nil {
		r.o.Floor.Close(r.res)
	}
	r.store(recs)
}

// events collects CONTAINER_STARTED events by container id.
type events struct {
	cancel context.CancelFunc
	mu     sync.Mutex
	seen   map[string]time.Time
	err    error
	notify chan struct{}
	done   chan struct{}
}

func (r *Runner) watchEvents(ctx context.Context) *events {
	sctx, cancel := context.WithCancel(ctx)
	e := &events{cancel: cancel, seen: map[string]time.Time{}, notify: make(chan struct{}, 1), done: make(chan struct{})}
	stream, err := r.rt.GetContainerEvents(sctx, &cri.GetEventsRequest{})
	if err != nil {
		e.err = err
		close(e.done)
		return e
	}
	go func() {
		defer close(e.done)
		for {
			m, err := stream.Recv()
			now := time.Now()
			if err != nil {
				e.mu.Lock()
				e.err = err
				e.mu.Unlock()
				return
			}
			if m.ContainerEventType != cri.ContainerEventType_CONTAINER_STARTED_EVENT {
				continue
			}
			e.mu.Lock()
			if _, ok := e.seen[m.ContainerId]; !ok {
				e.seen[m.ContainerId] = now
			}
			e.mu.Unlock()
			select {
			case e.notify <- struct{}{}:
			default:
			}
		}
	}()
	return e
}

// finish waits (bounded) for the events of the started pods and records
// "event.started": event arrival minus StartContainer's return, or the
// scenario as unsupported when the stream failed or yielded nothing.
func (e *events) finish(r *Runner, pods []*pod) {
	want := map[string]time.Time{}
	for _, p := range pods {
		if p.err == nil {
			want[p.ctrID] = p.startedAt
		}
	}
	deadline := time.NewTimer(eventWait)
	defer deadline.Stop()
wait:
	for {
		e.mu.Lock()
		n := 0
		for id := range want {
			if _, ok := e.seen[id]; ok {
				n++
			}
		}
		e.mu.Unlock()
		if n == len(want) {
			break
		}
		select {
		case <-e.notify:
		case <-e.done:
			break wait
		case <-deadline.C:
			break wait
		}
	}
	e.cancel()
	<-e.done
	var rec stats.Recorder
	matched, early := 0, 0
	for id, started := range want {
		at, ok := e.seen[id]
		if !ok {
			rec.Fail(fmt.Errorf("no STARTED event for %s within %v", id, eventWait))
			continue
		}
		matched++
		// Negative when the event arrived before StartContainer returned:
		// counted as zero latency, and counted.
		if at.Before(started) {
			early++
		}
		rec.Add(max(at.Sub(started), 0))
	}
	switch {
	case matched == 0 && e.err != nil && !errors.Is(e.err, context.Canceled):
		r.res.Unsupported["event.started"] = fmt.Sprintf("GetContainerEvents: %v", e.err)
	case matched == 0:
		r.res.Unsupported["event.started"] = fmt.Sprintf("GetContainerEvents yielded no CONTAINER_STARTED event within %v of the last start", eventWait)
	default:
		r.res.Ops["event.started"] = rec.Summary()
		r.res.Values["event.started_before_return"] = float64(early)
	}
}
