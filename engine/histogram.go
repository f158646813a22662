package engine

import (
	"math"
	"sync/atomic"
	"time"
)

// Histogram is a distribution the engine keeps, with fixed buckets, for
// exporters (metrics turns each into a Prometheus histogram). Like the
// other Counters it only grows, and a closed room's stays in the engine's
// totals.
type Histogram struct {
	// Bounds are the buckets' upper bounds, ascending; the last bucket,
	// +Inf, is implicit.
	Bounds []float64
	// Counts[i] is the number of observations at most Bounds[i] and over
	// Bounds[i-1] (not cumulative); Counts[len(Bounds)] those above the
	// last bound.
	Counts []uint64
	Count  uint64
	Sum    float64
}

// Cumulative returns the bucket counts as Prometheus wants them: upper
// bound to the number of observations at most that bound.
func (h Histogram) Cumulative() map[float64]uint64 {
	out := make(map[float64]uint64, len(h.Bounds))
	var n uint64
	for i, b := range h.Bounds {
		n += h.Counts[i]
		out[b] = n
	}
	return out
}

// clone copies h's counts, so that adding to the copy leaves h alone.
func (h Histogram) clone() Histogram {
	h.Counts = append([]uint64(nil), h.Counts...)
	return h
}

func (h *Histogram) add(o Histogram) {
	if h.Counts == nil {
		h.Bounds = o.Bounds
		h.Counts = make([]uint64, len(o.Counts))
	}
	for i := range o.Counts {
		h.Counts[i] += o.Counts[i]
	}
	h.Count += o.Count
	h.Sum += o.Sum
}

// The engine's histograms' buckets.
var (
	// LossBuckets bound the fraction lost (0..1) participants report:
	// around the tiers' thresholds (3% and 8% by default).
	LossBuckets = []float64{0, .01, .02, .03, .05, .08, .1, .15, .2, .3, .5}
	// RTTBuckets bound participants' round-trip times, in seconds.
	RTTBuckets = []float64{.01, .025, .05, .1, .15, .2, .3, .5, 1, 2}
	// JitterBuckets bound the interarrival jitter participants report, in
	// seconds.
	JitterBuckets = []float64{.001, .0025, .005, .01, .02, .03, .05, .1, .2}
	// DelayBuckets bound speakers' jitter-buffer delay, in seconds.
	DelayBuckets = []float64{.02, .04, .06, .08, .1, .12, .15, .2, .3, .5, 1}
)

// histogram is the atomic form a room updates; the sum is kept in
// millionths of the unit.
type histogram struct {
	bounds []float64
	counts []atomic.Uint64
	sum    atomic.Uint64
}

func newHistogram(bounds []float64) histogram {
	return histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// observe adds v; NaN and negative values are not observed.
func (h *histogram) observe(v float64) {
	if math.IsNaN(v) || v < 0 {
		return
	}
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(uint64(math.Min(v, 1e6)*1e6 + 0.5))
}

func (h *histogram) observeDuration(d time.Duration) { h.observe(d.Seconds()) }

func (h *histogram) snapshot() Histogram {
	s := Histogram{Bounds: h.bounds, Counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
		s.Count += s.Counts[i]
	}
	s.Sum = float64(h.sum.Load()) / 1e6
	return s
}
