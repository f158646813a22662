package signal

import (
	"math"
	"math/bits"
)

// Signal comparison: cross-correlation (by FFT, in blocks, so ten minutes
// of 48 kHz audio need no 2^25-point transform), alignment, SNR and
// segmental SNR.

// fft is an in-place iterative radix-2 complex FFT of one size.
type fft struct {
	n        int
	cos, sin []float64 // twiddles e^(-2πik/n), k < n/2
	rev      []int32   // bit reversal permutation
}

func newFFT(n int) *fft {
	if n < 2 || n&(n-1) != 0 {
		panic("signal: fft size must be a power of two")
	}
	f := &fft{n: n, cos: make([]float64, n/2), sin: make([]float64, n/2), rev: make([]int32, n)}
	for k := range n / 2 {
		a := -2 * math.Pi * float64(k) / float64(n)
		f.cos[k], f.sin[k] = math.Cos(a), math.Sin(a)
	}
	shift := 64 - bits.TrailingZeros(uint(n))
	for i := range n {
		f.rev[i] = int32(bits.Reverse64(uint64(i)) >> shift)
	}
	return f
}

// transform runs the forward transform, or the inverse without the 1/n.
func (f *fft) transform(re, im []float64, inverse bool) {
	n := f.n
	for i := range n {
		if j := int(f.rev[i]); j > i {
			re[i], re[j] = re[j], re[i]
			im[i], im[j] = im[j], im[i]
		}
	}
	sign := 1.0
	if inverse {
		sign = -1
	}
	for size := 2; size <= n; size <<= 1 {
		half, step := size/2, n/size
		for start := 0; start < n; start += size {
			for k := range half {
				wr, wi := f.cos[k*step], sign*f.sin[k*step]
				a, b := start+k, start+k+half
				tr := re[b]*wr - im[b]*wi
				ti := re[b]*wi + im[b]*wr
				re[b], im[b] = re[a]-tr, im[a]-ti
				re[a] += tr
				im[a] += ti
			}
		}
	}
}

// xcorr returns c[j] = Σ_n a[n]·b[n+lo+j] for lags lo+j in [lo, hi], b
// taken as zero outside its range. It works in blocks of a, each block's
// correlation one complex FFT pair (a's block and b's stretch packed as
// real and imaginary parts).
func xcorr(a, b []float64, lo, hi int) []float64 {
	span := hi - lo
	out := make([]float64, span+1)
	n := 1 << 14
	// A short search (a segment's, in TrackedSegmentalSNR) fits one block
	// of a smaller transform.
	for n > 64 && n/2 >= 4*(span+1) && n/2 >= len(a)+span+1 {
		n >>= 1
	}
	for n < 4*(span+1) {
		n <<= 1
	}
	block := n - span - 1
	f := newFFT(n)
	re, im := make([]float64, n), make([]float64, n)
	pr, pi := make([]float64, n), make([]float64, n)
	for s := 0; s < len(a); s += block {
		clear(re)
		clear(im)
		copy(re, a[s:min(len(a), s+block)])
		for i := range block + span {
			if j := s + lo + i; j >= 0 && j < len(b) {
				im[i] = b[j]
			}
		}
		f.transform(re, im, false)
		// Unpack A = FFT(a block) and B = FFT(b stretch) from Z = A + iB
		// and form conj(A)·B.
		for k := range n {
			m := (n - k) & (n - 1)
			ar, ai := (re[k]+re[m])/2, (im[k]-im[m])/2
			br, bi := (im[k]+im[m])/2, -(re[k]-re[m])/2
			pr[k] = ar*br + ai*bi
			pi[k] = ar*bi - ai*br
		}
		f.transform(pr, pi, true)
		for j := range out {
			out[j] += pr[j] / float64(n)
		}
	}
	return out
}

// decimate averages groups of k samples: a crude low-pass and
// down-sampling, enough to find a correlation peak cheaply.
func decimate(x []int16, k int) []float64 {
	out := make([]float64, len(x)/k)
	for i := range out {
		var s int32
		for _, v := range x[i*k : i*k+k] {
			s += int32(v)
		}
		out[i] = float64(s) / float64(k)
	}
	return out
}

// lagDecimation is the coarse search's down-sampling: 48 kHz to 8 kHz.
const lagDecimation = 6

// BestLag finds the lag d in [lo, hi] samples that maximises
// Σ a[n]·b[n+d]: b is a delayed by d. A coarse search on 8 kHz versions
// finds the peak, a full-rate search around it refines it. ok is false
// when the signals do not correlate at all (one is silent).
func BestLag(a, b []int16, lo, hi int) (lag int, ok bool) {
	return searchLag(a, b, lo, hi, false)
}

// BestFitLag finds the lag in [lo, hi] that minimises Σ (a[n] − b[n+d])²:
// the cross-correlation less half the energy of b under a. Where a is
// quiet (a pause) the plain correlation peak can land on any loud stretch
// of b; the least-squares fit does not.
func BestFitLag(a, b []int16, lo, hi int) (lag int, ok bool) {
	return searchLag(a, b, lo, hi, true)
}

func searchLag(a, b []int16, lo, hi int, fit bool) (lag int, ok bool) {
	da, db := decimate(a, lagDecimation), decimate(b, lagDecimation)
	clo, chi := floorDiv(lo, lagDecimation), -floorDiv(-hi, lagDecimation)
	c := xcorr(da, db, clo, chi)
	if fit {
		// Energy of db under da at each lag, from prefix sums.
		pre := make([]float64, len(db)+1)
		for i, v := range db {
			pre[i+1] = pre[i] + v*v
		}
		for j := range c {
			from := min(len(db), max(0, clo+j))
			to := min(len(db), max(0, clo+j+len(da)))
			c[j] -= (pre[to] - pre[from]) / 2
		}
	}
	best := 0
	for j := range c {
		if c[j] > c[best] {
			best = j
		}
	}
	if !fit && c[best] <= 0 {
		return 0, false
	}
	centre := (clo + best) * lagDecimation
	bestV := math.Inf(-1)
	for d := max(lo, centre-lagDecimation-1); d <= min(hi, centre+lagDecimation+1); d++ {
		v := dot(a, b, d)
		if fit {
			v = -sqErr(a, b, d)
		}
		if v > bestV {
			lag, bestV = d, v
		}
	}
	return lag, fit || bestV > 0
}

func floorDiv(a, b int) int {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// sqErr is Σ (a[n] − b[n+d])², b taken as zero outside its range.
func sqErr(a, b []int16, d int) float64 {
	var s float64
	for n, v := range a {
		e := float64(v)
		if j := n + d; j >= 0 && j < len(b) {
			e -= float64(b[j])
		}
		s += e * e
	}
	return s
}

// dot is Σ a[n]·b[n+d] over the overlap.
func dot(a, b []int16, d int) float64 {
	from, to := max(0, -d), min(len(a), len(b)-d)
	var s int64
	for n := from; n < to; n++ {
		s += int64(a[n]) * int64(b[n+d])
	}
	return float64(s)
}

// MaxSNR stands for an infinite SNR (identical signals) in reports: JSON
// has no infinity.
const MaxSNR = 100

// SNR compares x, delayed by lag against ref, to ref over ref's samples
// from skip on: 10·log10(Σref² / Σ(ref−x)²), at most MaxSNR.
func SNR(ref, x []int16, lag, skip int) float64 {
	var sig, noise float64
	for n := max(skip, -lag); n < len(ref) && n+lag < len(x); n++ {
		r := float64(ref[n])
		e := r - float64(x[n+lag])
		sig += r * r
		noise += e * e
	}
	return min(ratioDB(sig, noise), MaxSNR)
}

// Segmental SNR: 20 ms segments, each clamped to [SegmentMinDB,
// SegmentMaxDB], averaged over the segments where the reference is not
// silent.
const (
	// SegmentMinDB is the lowest SNR one segment counts for.
	SegmentMinDB = -10
	// SegmentMaxDB is the highest SNR one segment counts for: an exact copy.
	SegmentMaxDB = 35

	segLen      = 960
	segSilentDB = -50 // reference RMS, dBFS, below which a segment is a pause
)

// SegmentalSNR is the mean over ref's non-silent 20 ms segments from skip
// on of each segment's SNR of x (delayed by lag), clamped to [-10, 35] dB.
// It also returns how many segments counted.
func SegmentalSNR(ref, x []int16, lag, skip int) (float64, int) {
	silent := math.Pow(10, segSilentDB/10.0) * 32768 * 32768 * segLen
	var sum float64
	count := 0
	for s := max(skip, -lag); s+segLen <= len(ref) && s+segLen+lag <= len(x); s += segLen {
		var sig, noise float64
		for n := s; n < s+segLen; n++ {
			r := float64(ref[n])
			e := r - float64(x[n+lag])
			sig += r * r
			noise += e * e
		}
		if sig < silent {
			continue
		}
		sum += max(SegmentMinDB, min(SegmentMaxDB, ratioDB(sig, noise)))
		count++
	}
	if count == 0 {
		return 0, 0
	}
	return sum / float64(count), count
}

// ratioDB is 10·log10(sig/noise): +Inf for no noise, -Inf for no signal.
func ratioDB(sig, noise float64) float64 {
	if noise == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(sig/noise)
}

// BlockSNR is the SNR of x against ref from skip on with each block of
// ref aligned on its own, the least-squares fit within ±search samples:
// signal and noise energies summed over the blocks.
// A jitter buffer that drops or inserts a frame shifts everything after
// it; one global alignment counts the rest of the run as noise, block
// alignment only the block where it happened. A block x does not reach
// takes the lag fallback.
func BlockSNR(ref, x []int16, skip, block, search, fallback int) float64 {
	var sig, noise float64
	for s := skip; s+block <= len(ref); s += block {
		a := ref[s : s+block]
		from, to := max(0, s-search), min(len(x), s+block+search)
		lag := fallback
		if from < to {
			d, _ := BestFitLag(a, x[from:to], s-search-from, s+search-from)
			lag = from + d - s
		}
		for n, r := range a {
			v := 0.0
			if j := s + n + lag; j >= 0 && j < len(x) {
				v = float64(x[j])
			}
			e := float64(r) - v
			sig += float64(r) * float64(r)
			noise += e * e
		}
	}
	return min(ratioDB(sig, noise), MaxSNR)
}

// TrackedSegmentalSNR is SegmentalSNR with the alignment followed
// locally: each 20 ms segment of ref from skip on is compared with x at
// its own lag, the least-squares fit of the 60 ms around the segment
// searched within ±search samples of the previous segment's lag (the
// first around lag). Audio a time-stretcher or a jitter buffer shortens or
// lengthens drifts against ref a little at a time; this follows it, where
// one alignment counts everything after the first shift as noise. It also
// returns the segments counted and the last lag.
func TrackedSegmentalSNR(ref, x []int16, lag, skip, search int) (db float64, n, last int) {
	last = lag
	var sum float64
	TrackSegments(ref, x, lag, skip, search, func(s Segment) {
		sum += max(SegmentMinDB, min(SegmentMaxDB, s.SNR))
		n++
		last = s.Lag
	})
	if n == 0 {
		return 0, 0, last
	}
	return sum / float64(n), n, last
}

// Segment is one non-silent 20 ms segment of a reference as
// TrackSegments found it in the signal under test.
type Segment struct {
	Start int     // first sample of the segment in the reference
	Lag   int     // where it lies in the signal under test: at Start+Lag
	SNR   float64 // its SNR there, dB, unclamped (+Inf for an exact copy)
}

// TrackSegments calls fn for each non-silent 20 ms segment of ref from
// skip on, in order, with the alignment followed locally as in
// TrackedSegmentalSNR (which averages what it reports): a caller can score
// segment by segment, and see where each one lies in x.
func TrackSegments(ref, x []int16, lag, skip, search int, fn func(Segment)) {
	silent := math.Pow(10, segSilentDB/10.0) * 32768 * 32768 * segLen
	for s := max(skip, segLen); s+2*segLen <= len(ref); s += segLen {
		var sig float64
		for _, r := range ref[s : s+segLen] {
			sig += float64(r) * float64(r)
		}
		if sig < silent {
			continue // a pause: its lag says little
		}
		a := ref[s-segLen : s+2*segLen]
		from, to := max(0, s-segLen+lag-search), min(len(x), s+2*segLen+lag+search)
		if to-from < 3*segLen {
			return
		}
		d, _ := BestFitLag(a, x[from:to], s-segLen+lag-search-from, s-segLen+lag+search-from)
		lag = from + d - (s - segLen)
		noise := sqErr(ref[s:s+segLen], x, s+lag)
		fn(Segment{Start: s, Lag: lag, SNR: ratioDB(sig, noise)})
	}
}
