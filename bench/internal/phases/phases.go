// Package phases summarises the per-step timings the Flotilla daemons log at
// debug level (lib/metrics.Phases: `msg=phases op=run_pod total_ms=…
// network_ms=…`), so a bench run can say where each millisecond goes.
package phases

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"flotilla.dev/bench/internal/stats"
)

// Step is the summary of one step of one operation.
type Step struct {
	Op, Phase string
	stats.Summary
}

// Collector gathers the phase lines of one or more logs; with From/To set,
// only lines whose time= lies in [From, To].
type Collector struct {
	From, To time.Time

	recs  map[[2]string]*stats.Recorder
	order map[string][]string // op → phases in first-seen order
}

// NewCollector returns an empty collector.
func NewCollector() *Collector {
	return &Collector{recs: map[[2]string]*stats.Recorder{}, order: map[string][]string{}}
}

// Read adds the phase lines of a text-format (key=value) slog log.
func (c *Collector) Read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, " msg=phases ") {
			continue
		}
		var op string
		var at time.Time
		type kv struct {
			k string
			v float64
		}
		var steps []kv
		for _, f := range strings.Fields(line) {
			k, v, ok := strings.Cut(f, "=")
			if !ok {
				continue
			}
			if k == "op" {
				op = v
				continue
			}
			if k == "time" {
				at, _ = time.Parse(time.RFC3339Nano, v)
				continue
			}
			name, isMS := strings.CutSuffix(k, "_ms")
			if !isMS {
				continue
			}
			ms, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			steps = append(steps, kv{name, ms})
		}
		if op == "" || (!c.From.IsZero() && at.Before(c.From)) || (!c.To.IsZero() && at.After(c.To)) {
			continue
		}
		for _, s := range steps {
			key := [2]string{op, s.k}
			if c.recs[key] == nil {
				c.recs[key] = &stats.Recorder{}
				c.order[op] = append(c.order[op], s.k)
			}
			c.recs[key].Add(time.Duration(s.v * float64(time.Millisecond)))
		}
	}
	return sc.Err()
}

// Steps returns every step, operations sorted by name, steps in log order
// with total first.
func (c *Collector) Steps() []Step {
	ops := make([]string, 0, len(c.order))
	for op := range c.order {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	var out []Step
	for _, op := range ops {
		for _, ph := range c.order[op] {
			out = append(out, Step{Op: op, Phase: ph, Summary: c.recs[[2]string{op, ph}].Summary()})
		}
	}
	return out
}

// Print writes the steps as a table.
func Print(w io.Writer, steps []Step) {
	fmt.Fprintf(w, "%-18s %-28s %6s %9s %9s %9s\n", "operation", "step", "n", "p50 ms", "p90 ms", "mean ms")
	for _, s := range steps {
		name := "  " + s.Phase
		if s.Phase == "total" {
			name = s.Phase
		}
		fmt.Fprintf(w, "%-18s %-28s %6d %9.2f %9.2f %9.2f\n", s.Op, name, s.N, s.P50, s.P90, s.Mean)
	}
}
