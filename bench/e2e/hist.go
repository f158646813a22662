package e2e

import "time"

// histogram counts durations in buckets of res, up to len(b)·res; longer
// ones go in the last bucket, and the greatest is kept exactly.
type histogram struct {
	res time.Duration
	b   []uint64
	n   uint64
	max time.Duration
}

func newHistogram(res time.Duration, buckets int) *histogram {
	return &histogram{res: res, b: make([]uint64, buckets)}
}

func (h *histogram) add(d time.Duration) {
	d = max(d, 0)
	h.b[min(int(d/h.res), len(h.b)-1)]++
	h.n++
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.b {
		h.b[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

func (h *histogram) reset() {
	clear(h.b)
	h.n, h.max = 0, 0
}

// quantile is the upper edge of the bucket holding the q-quantile (0 when
// empty), at most the greatest duration seen.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n-1)) + 1
	var seen uint64
	for i, c := range h.b {
		seen += c
		if seen >= rank {
			return min(time.Duration(i+1)*h.res, h.max)
		}
	}
	return h.max
}

// ms is d in milliseconds, for reports.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
