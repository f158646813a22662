package signal

import (
	"math"
	"slices"
	"testing"
)

// frameDB is a frame's RMS in dB relative to full scale.
func frameDB(pcm []int16) float64 {
	var ss float64
	for _, x := range pcm {
		ss += float64(x) * float64(x)
	}
	return 10 * math.Log10(ss/float64(len(pcm))/(32768*32768)+1e-30)
}

func voiceSamples(seed uint64, n int) []int16 {
	pcm := make([]int16, n)
	NewVoice(seed).Fill(pcm)
	return pcm
}

func TestVoiceDeterministic(t *testing.T) {
	const n = 5 * 48000
	want := voiceSamples(7, n)
	// The same seed gives the same samples whatever the Fill sizes: the
	// state carries across calls.
	got := make([]int16, n)
	v := NewVoice(7)
	for off, step := 0, 441; off < n; off += step {
		v.Fill(got[off:min(n, off+step)])
	}
	if i := firstDiff(want, got); i >= 0 {
		t.Fatalf("same seed, different chunking: sample %d is %d, want %d", i, got[i], want[i])
	}
	if slices.Equal(want, voiceSamples(8, n)) {
		t.Fatal("seeds 7 and 8 give identical voices")
	}
}

func firstDiff(a, b []int16) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func TestVoicePitchRange(t *testing.T) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for seed := range uint64(200) {
		f0 := NewVoice(seed).baseF0
		lo, hi = min(lo, f0), max(hi, f0)
	}
	if lo < minF0 || hi > maxF0 || hi-lo < 80 {
		t.Fatalf("base pitch over 200 seeds spans %.0f..%.0f Hz, want a wide spread within 90..260", lo, hi)
	}
}

// A talker alternates talk and pauses: 20 s hold loud frames, near-silent
// frames and pauses of at least 0.3 s, and peaks near -6 dBFS.
func TestVoiceTalkAndPause(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		pcm := voiceSamples(seed, 20*48000)
		var loud, quiet, run, longest int
		for f := 0; f+960 <= len(pcm); f += 960 {
			db := frameDB(pcm[f : f+960])
			switch {
			case db > -30:
				loud++
				run = 0
			case db < -60:
				quiet++
				run++
				longest = max(longest, run)
			default:
				run = 0
			}
		}
		var peak int
		for _, x := range pcm {
			peak = max(peak, int(math.Abs(float64(x))))
		}
		peakDB := 20 * math.Log10(float64(peak)/32768)
		t.Logf("seed %d: %d loud, %d near-silent of 1000 frames, longest pause %d ms, peak %.1f dBFS",
			seed, loud, quiet, longest*20, peakDB)
		if loud < 400 || quiet < 100 || longest < 15 {
			t.Errorf("seed %d: %d loud and %d near-silent frames, longest pause %d ms: want talk and pauses",
				seed, loud, quiet, longest*20)
		}
		if peakDB < -8 || peakDB > -4 {
			t.Errorf("seed %d: peak %.1f dBFS, want about -6", seed, peakDB)
		}
	}
}

// The voice is harmonic, not a sine: every loud frame has several strong
// spectral peaks, and the strongest frequency typically holds well under
// half the frame's power (a sine holds all of it). A formant sitting on
// one harmonic of a high voice may make that harmonic dominate a frame,
// as in real vowels, so single frames are held to a looser bound.
func TestVoiceHarmonics(t *testing.T) {
	for _, seed := range []uint64{1, 2, 4} {
		pcm := voiceSamples(seed, 4*48000)
		var tops []float64
		for f := 0; f+960 <= len(pcm); f += 960 {
			frame := pcm[f : f+960]
			if frameDB(frame) < -25 {
				continue
			}
			var ms float64
			for _, x := range frame {
				v := float64(x) / 32768
				ms += v * v
			}
			ms /= float64(len(frame))
			// A sine of amplitude A has Goertzel power A²/4 and mean
			// square A²/2, so share is the fraction of the frame's power
			// at freq.
			var shares []float64
			for freq := 60.0; freq <= 3000; freq += 10 {
				shares = append(shares, 2*Goertzel(frame, freq)/ms)
			}
			top, peaks := 0.0, 0
			for i, s := range shares {
				top = max(top, s)
				if i > 0 && i < len(shares)-1 && s >= shares[i-1] && s > shares[i+1] && s > 0.02 {
					peaks++
				}
			}
			if top > 0.95 || peaks < 3 {
				t.Fatalf("seed %d, frame at %d ms: strongest frequency holds %.0f%% of the power, %d strong peaks; want a spread over harmonics",
					seed, f/48, 100*top, peaks)
			}
			tops = append(tops, top)
		}
		if len(tops) < 50 {
			t.Fatalf("seed %d: only %d loud frames in 4 s", seed, len(tops))
		}
		slices.Sort(tops)
		if med := tops[len(tops)/2]; med > 0.7 {
			t.Errorf("seed %d: the strongest frequency holds a median %.0f%% of a loud frame's power, want a spread over harmonics", seed, 100*med)
		}
	}
}

func TestVoiceFillDoesNotAllocate(t *testing.T) {
	v := NewVoice(1)
	pcm := make([]int16, 960)
	if n := testing.AllocsPerRun(100, func() { v.Fill(pcm) }); n != 0 {
		t.Fatalf("Fill allocates %.1f times per call", n)
	}
}
