// Package stats summarises timed samples: failed calls are counted, never
// timed, and percentiles use the nearest-rank method on the successes.
package stats

import (
	"math"
	"sort"
	"sync"
	"time"
)

// Summary of one measured operation. Durations are milliseconds so the JSON
// reads without conversion.
type Summary struct {
	N      int      `json:"n"`      // successful samples
	Errors int      `json:"errors"` // failed calls (not timed)
	P50    float64  `json:"p50_ms"`
	P90    float64  `json:"p90_ms"`
	Mean   float64  `json:"mean_ms"`
	Min    float64  `json:"min_ms"`
	Max    float64  `json:"max_ms"`
	Sample []string `json:"error_samples,omitempty"` // first distinct error messages
}

// maxErrSamples bounds the distinct error messages kept per operation.
const maxErrSamples = 3

// Recorder collects samples and errors of one operation; safe for
// concurrent use.
type Recorder struct {
	mu     sync.Mutex
	ok     []time.Duration
	errors int
	msgs   []string
}

// Add records a successful sample.
func (r *Recorder) Add(d time.Duration) {
	r.mu.Lock()
	r.ok = append(r.ok, d)
	r.mu.Unlock()
}

// Fail records a failed call; its duration is not recorded.
func (r *Recorder) Fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors++
	if err == nil || len(r.msgs) >= maxErrSamples {
		return
	}
	msg := err.Error()
	for _, m := range r.msgs {
		if m == msg {
			return
		}
	}
	r.msgs = append(r.msgs, msg)
}

// Observe records d when err is nil and the error otherwise.
func (r *Recorder) Observe(d time.Duration, err error) {
	if err != nil {
		r.Fail(err)
		return
	}
	r.Add(d)
}

// Summary computes the summary of what was recorded so far.
func (r *Recorder) Summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Summarize(r.ok)
	s.Errors = r.errors
	s.Sample = append([]string(nil), r.msgs...)
	return s
}

// Summarize computes N, percentiles, mean, min and max of ds.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	ms := make([]float64, len(ds))
	sum := 0.0
	for i, d := range ds {
		ms[i] = float64(d) / float64(time.Millisecond)
		sum += ms[i]
	}
	sort.Float64s(ms)
	return Summary{
		N:    len(ms),
		P50:  round(Percentile(ms, 50)),
		P90:  round(Percentile(ms, 90)),
		Mean: round(sum / float64(len(ms))),
		Min:  round(ms[0]),
		Max:  round(ms[len(ms)-1]),
	}
}

// Percentile is the nearest-rank p-th percentile (0 < p <= 100) of sorted
// values: the smallest value with at least p% of the values at or below
// it. NaN for no values.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

func round(v float64) float64 { return math.Round(v*1000) / 1000 }

// Median of vs (the mean of the middle two for an even count); NaN for
// none. vs is not changed.
func Median(vs []float64) float64 {
	if len(vs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}
