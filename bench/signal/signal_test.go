package signal

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/handsup-audio/handsup/codec"
)

// The rate of the signals and the quality runs' alignment search (±0.5 s).
const (
	sampleRate  = codec.SampleRate
	alignSearch = sampleRate / 2
)

func TestXcorrMatchesDirect(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	a, b := make([]float64, 40000), make([]float64, 37000)
	for i := range a {
		a[i] = rng.NormFloat64()
	}
	for i := range b {
		b[i] = rng.NormFloat64()
	}
	lo, hi := -300, 500
	c := xcorr(a, b, lo, hi)
	for _, lag := range []int{-300, -7, 0, 1, 250, 500} {
		var want float64
		for n := range a {
			if j := n + lag; j >= 0 && j < len(b) {
				want += a[n] * b[j]
			}
		}
		if got := c[lag-lo]; math.Abs(got-want) > 1e-6*math.Max(1, math.Abs(want)) {
			t.Errorf("lag %d: %g, want %g", lag, got, want)
		}
	}
}

func TestBestLagAndSNR(t *testing.T) {
	ref := make([]int16, 6*sampleRate)
	NewVoice(5).Fill(ref)
	for _, delay := range []int{0, 1, 37, 960, 12345, -4321} {
		x := make([]int16, len(ref))
		for i := range x {
			if j := i - delay; j >= 0 && j < len(ref) {
				x[i] = ref[j]
			}
		}
		lag, ok := BestLag(ref, x, -alignSearch, alignSearch)
		if !ok || lag != delay {
			t.Errorf("delay %d: found %d (ok %v)", delay, lag, ok)
		}
		if s := SNR(ref, x, lag, sampleRate); s != MaxSNR {
			t.Errorf("delay %d: SNR %.1f of an exact copy", delay, s)
		}
	}
	// Noise at a tenth of the amplitude: 20 dB, give or take the voice's
	// level over the run.
	rng := rand.New(rand.NewPCG(3, 4))
	var sig float64
	for _, v := range ref {
		sig += float64(v) * float64(v)
	}
	rms := math.Sqrt(sig / float64(len(ref)))
	x := make([]int16, len(ref))
	for i, v := range ref {
		x[i] = int16(float64(v) + 0.1*rms*rng.NormFloat64())
	}
	if s := SNR(ref, x, 0, 0); math.Abs(s-20) > 0.3 {
		t.Errorf("SNR with noise at -20 dB: %.2f", s)
	}
	// Segments clamp to [-10, 35] dB: an exact copy is 35, silence 0, a
	// loud inverted tone against a quiet one -20.8, so -10.
	if s, n := SegmentalSNR(ref, ref, 0, 0); n == 0 || s != SegmentMaxDB {
		t.Errorf("segmental SNR of a copy: %.1f over %d segments, want %d", s, n, SegmentMaxDB)
	}
	if s, n := SegmentalSNR(ref, make([]int16, len(ref)), 0, 0); n == 0 || s != 0 {
		t.Errorf("segmental SNR of silence against speech: %.1f over %d segments, want 0", s, n)
	}
	quiet, loud := make([]int16, sampleRate), make([]int16, sampleRate)
	Tone(quiet, 440, 1000, 0)
	Tone(loud, 440, -10000, 0)
	if s, n := SegmentalSNR(quiet, loud, 0, 0); n != 50 || s != SegmentMinDB {
		t.Errorf("segmental SNR of a loud inverted copy: %.1f over %d segments, want %d over 50", s, n, SegmentMinDB)
	}
	if _, ok := BestLag(ref, make([]int16, len(ref)), -100, 100); ok {
		t.Error("a lag found against silence")
	}
}

// A frame dropped mid-run shifts the rest: one global alignment counts it
// all as noise, block alignment only the 20 ms around the shift, pauses
// included (least-squares fit, not the correlation peak).
func TestBlockSNR(t *testing.T) {
	ref := make([]int16, 8*sampleRate)
	NewVoice(9).Fill(ref)
	x := make([]int16, len(ref))
	for i := range x {
		d := 960
		if i >= 4*sampleRate {
			d = 0 // the buffer dropped a frame at 4 s
		}
		if j := i - d; j >= 0 {
			x[i] = ref[j]
		}
	}
	lag, _ := BestLag(ref, x, -alignSearch, alignSearch)
	global := SNR(ref, x, lag, sampleRate)
	block := BlockSNR(ref, x, sampleRate, sampleRate, alignSearch, lag)
	t.Logf("global lag %d: SNR %.1f dB; block-aligned %.1f dB", lag, global, block)
	if global > 10 || block < 40 {
		t.Errorf("global SNR %.1f (want poor), block-aligned %.1f (want > 40)", global, block)
	}
}

// Music is deterministic, never silent, and about -12 dBFS.
func TestMusic(t *testing.T) {
	a, b := make([]int16, 10*sampleRate), make([]int16, 10*sampleRate)
	NewMusic(1).Fill(a)
	NewMusic(1).Fill(b)
	if !slices.Equal(a, b) {
		t.Fatal("equal seeds, different music")
	}
	for s := 0; s+960 <= len(a); s += 960 {
		var e float64
		for _, v := range a[s : s+960] {
			e += float64(v) * float64(v)
		}
		if db := 10 * math.Log10(e/960/32768/32768); db < -30 || db > -3 {
			t.Fatalf("20 ms at %d: %.1f dBFS", s, db)
		}
	}
}
