package tsm

import "math"

// Search range and thresholds, at 48 kHz.
const (
	// MinPeriod is the shortest lag searched: 2.5 ms (400 Hz).
	MinPeriod = 120
	// MaxPeriod is the longest lag searched: 15 ms (67 Hz). A block
	// shorter than 2 × MaxPeriod is searched up to half its length.
	MaxPeriod = 720
	// DefaultThreshold is the normalised correlation a block must reach
	// to be stretched unless it is quiet (NetEQ's 0.9).
	DefaultThreshold = 0.9
	// QuietRMS is the RMS (of 32768) below which a block counts as quiet,
	// about -50 dBFS, and is stretched whatever its correlation.
	QuietRMS = 104

	decimation = 8 // the coarse search runs at 6 kHz
)

// Result says what a stretch did.
type Result struct {
	// Period is the number of samples removed or inserted; 0 when the
	// block was left alone.
	Period int
	// Correlation is the normalised correlation of the two periods at the
	// chosen lag, in [-1, 1].
	Correlation float64
	// Quiet reports that the block was quiet enough to stretch whatever
	// its correlation.
	Quiet bool
}

// Accelerate removes one pitch period, at most limit samples (MaxPeriod
// when limit is 0 or more), from the start of pcm, in place, when pcm is
// periodic enough (correlation at least threshold) or quiet, and returns
// the new length (pcm[:n] holds the result) and what it did. pcm must hold
// at least 2 × MinPeriod samples to be shortened.
func Accelerate(pcm []int16, limit int, threshold float64) (n int, r Result) {
	r = search(pcm, min(maxPeriod(limit), len(pcm)/2), threshold)
	t := r.Period
	if t == 0 {
		return len(pcm), r
	}
	crossFade(pcm[:t], pcm[:t], pcm[t:2*t])
	copy(pcm[t:], pcm[2*t:])
	return len(pcm) - t, r
}

// PreemptiveExpand inserts one pitch period, at most limit samples
// (MaxPeriod when limit is 0 or more), near the start of pcm, in place,
// when pcm is periodic enough (correlation at least threshold) or quiet,
// and returns the new length and what it did. The result is written into
// pcm[:n] within cap(pcm): the period inserted is at most the spare
// capacity (and half the block's length).
func PreemptiveExpand(pcm []int16, limit int, threshold float64) (n int, r Result) {
	r = search(pcm, min(maxPeriod(limit), len(pcm)/2, cap(pcm)-len(pcm)), threshold)
	t := r.Period
	if t == 0 {
		return len(pcm), r
	}
	n = len(pcm) + t
	out := pcm[:n]
	// out = x[:t] ++ fade(x[t:2t] → x[:t]) ++ x[t:]
	copy(out[2*t:], pcm[t:])
	crossFade(out[t:2*t], out[2*t:3*t], out[:t])
	return n, r
}

func maxPeriod(limit int) int {
	if limit <= 0 {
		return MaxPeriod
	}
	return min(limit, MaxPeriod)
}

// crossFade writes into dst the fade from a (weight 1 at the start) to b
// (weight 1 at the end). dst may be a.
func crossFade(dst, a, b []int16) {
	n := len(dst)
	step := 1 / float32(n)
	for i := range dst {
		w := (float32(i) + 0.5) * step
		v := (1-w)*float32(a[i]) + w*float32(b[i])
		dst[i] = int16(max(-32768, min(32767, v+copysign(0.5, v))))
	}
}

func copysign(h, v float32) float32 {
	if v < 0 {
		return -h
	}
	return h
}

// search finds the lag in [MinPeriod, maxT] (maxT ≤ MaxPeriod and
// len(pcm)/2) at which the block's first period best matches the next, and
// returns it when the block is periodic enough or quiet (Period 0
// otherwise).
func search(pcm []int16, maxT int, threshold float64) Result {
	if maxT < MinPeriod {
		return Result{}
	}
	// Coarse: box-filtered 6 kHz copy of the first 2·maxT samples.
	var d [2 * MaxPeriod / decimation]float32
	m := 2 * maxT / decimation
	for i := range m {
		var s int32
		for _, v := range pcm[i*decimation : (i+1)*decimation] {
			s += int32(v)
		}
		d[i] = float32(s)
	}
	bestC, bestLag := float32(-2), 0
	for lag := MinPeriod / decimation; lag <= maxT/decimation; lag++ {
		// A longer lag must match clearly better to be taken: a steady
		// signal matches at every multiple of its period, and the
		// shortest cross-fades the least of it.
		if c := normCorr32(d[:lag], d[lag:2*lag]); c > bestC+0.02 {
			bestC, bestLag = c, lag
		}
	}
	// Fine: full rate around the coarse peak.
	best := Result{Correlation: -2}
	for t := max(MinPeriod, bestLag*decimation-decimation); t <= min(maxT, bestLag*decimation+decimation); t++ {
		if c := normCorr(pcm[:t], pcm[t:2*t]); c > best.Correlation {
			best.Correlation, best.Period = c, t
		}
	}
	t := best.Period
	var e int64
	for _, v := range pcm[:2*t] {
		e += int64(v) * int64(v)
	}
	best.Quiet = float64(e) < QuietRMS*QuietRMS*float64(2*t)
	if best.Correlation < threshold && !best.Quiet {
		best.Period = 0
	}
	return best
}

func normCorr32(a, b []float32) float32 {
	var ab, aa, bb float32
	for i, x := range a {
		y := b[i]
		ab += x * y
		aa += x * x
		bb += y * y
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return ab / float32(math.Sqrt(float64(aa)*float64(bb)))
}

func normCorr(a, b []int16) float64 {
	var ab, aa, bb int64
	b = b[:len(a)]
	for i, x := range a {
		y := int64(b[i])
		ab += int64(x) * y
		aa += int64(x) * int64(x)
		bb += y * y
	}
	if aa == 0 || bb == 0 {
		return 0
	}
	return float64(ab) / math.Sqrt(float64(aa)*float64(bb))
}
