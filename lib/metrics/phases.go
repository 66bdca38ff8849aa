package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PhaseLatency observes the steps of the hot-path operations (pod start,
// container create, ...) by operation and phase.
var PhaseLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
	Name:    "flotilla_phase_duration_seconds",
	Help:    "Duration of one step of an operation (e.g. op=run_pod, phase=network), by operation and phase.",
	Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
}, []string{"op", "phase"})

func init() { Registry.MustRegister(PhaseLatency) }

// Phases times the steps of one operation. Mark ends the current step;
// Add records a step timed elsewhere (e.g. one that ran in parallel). Done
// observes every step in PhaseLatency and logs them in one debug line, so
// `log_level = "debug"` shows where each millisecond of a pod start goes.
// A nil *Phases does nothing. Safe for concurrent use.
type Phases struct {
	op    string
	mu    sync.Mutex
	start time.Time
	last  time.Time
	steps []slog.Attr
	durs  map[string]time.Duration
}

// StartPhases starts timing op.
func StartPhases(op string) *Phases {
	now := time.Now()
	return &Phases{op: op, start: now, last: now, durs: map[string]time.Duration{}}
}

// Mark ends the step that began at the previous Mark (or the start).
func (p *Phases) Mark(phase string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.add(phase, now.Sub(p.last))
	p.last = now
}

// Add records a step of duration d.
func (p *Phases) Add(phase string, d time.Duration) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.add(phase, d)
}

func (p *Phases) add(phase string, d time.Duration) {
	if _, ok := p.durs[phase]; !ok {
		p.steps = append(p.steps, slog.Attr{Key: phase})
	}
	p.durs[phase] += d
}

// Durations returns the steps recorded so far.
func (p *Phases) Durations() map[string]time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]time.Duration, len(p.durs))
	for k, v := range p.durs {
		out[k] = v
	}
	return out
}

// Done observes the steps and logs them (ms) with the total at debug level.
func (p *Phases) Done(log *slog.Logger) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	total := time.Since(p.start)
	attrs := make([]slog.Attr, 0, len(p.steps)+2)
	attrs = append(attrs, slog.String("op", p.op), slog.Float64("total_ms", ms(total)))
	for _, s := range p.steps {
		d := p.durs[s.Key]
		PhaseLatency.WithLabelValues(p.op, s.Key).Observe(d.Seconds())
		attrs = append(attrs, slog.Float64(s.Key+"_ms", ms(d)))
	}
	PhaseLatency.WithLabelValues(p.op, "total").Observe(total.Seconds())
	if log != nil {
		log.LogAttrs(context.Background(), slog.LevelDebug, "phases", attrs...)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
