package signal

import (
	"math"
	"math/rand/v2"
)

// Voice synthesis constants. The voice is computed in 1 ms blocks: pitch,
// harmonic amplitudes and formants change per block, the waveform and the
// envelope (interpolated) per sample, so Fill stays cheap enough to make
// minutes of audio for a hundred speakers at start-up.
const (
	voiceRate  = 48000
	blockLen   = voiceRate / 1000 // 1 ms
	maxHarm    = 20
	minF0      = 90.0
	maxF0      = 260.0
	voicePeak  = 0.5 * 32767 // -6 dBFS
	noiseFloor = 10.0        // ±10 LSB uniform: about -75 dBFS RMS, a quiet room's microphone
)

// Voice is a deterministic synthetic talker: a voiced harmonic signal with
// a spectral tilt and formant peaks, moving pitch, a syllable-rate envelope
// and talk spurts separated by pauses. It stands in for real speech in
// benchmarks, where Opus must do the work speech makes it do (a sine or
// white noise would take other code paths and bit allocations).
//
// A Voice is not safe for concurrent use.
type Voice struct {
	rng *rand.Rand

	// Fixed by the seed.
	baseF0    float64
	nHarm     int
	tilt      [maxHarm]float64 // k^-slope
	nFormants int
	bw        [3]float64 // formant bandwidths, Hz
	f3        float64    // third formant, fixed per talker
	vibRate   float64    // Hz
	vibDepth  float64    // fraction of f0
	intoRate  float64    // Hz, slow intonation
	intoDepth float64

	// Running state.
	blockLeft       int
	cos, sin        float64 // phasor of the fundamental's phase
	rotCos, rotSin  float64 // its rotation per sample
	amp             [maxHarm]float64
	gain, gainStep  float64
	vibPhase        float64
	intoPhase       float64
	formant, target [2]float64 // first two formants, gliding between vowels
	accent, accentT float64    // per-syllable pitch accent and its target
	noise           uint64     // xorshift state for the noise floor

	talking  bool
	segLeft  int // samples left in the current pause, or in the spurt
	spurtLen int
	spurtPos int
	sylLen   int
	sylPos   int
	sylAmp   float64
}

// NewVoice makes the voice of the given seed; equal seeds give equal
// samples. The fundamental lies between 90 and 260 Hz.
func NewVoice(seed uint64) *Voice {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	v := &Voice{rng: rng, cos: 1, noise: seed*2862933555777941757 + 3037000493}
	if v.noise == 0 {
		v.noise = 1
	}
	// Base pitch leaves room for intonation (±~15%) within 90..260 Hz.
	v.baseF0 = 105 + 120*rng.Float64()
	v.nHarm = min(maxHarm, max(10, int(3000/v.baseF0)))
	slope := 0.5 + 0.4*rng.Float64() // about -3 to -5.5 dB per octave, before the formants
	for k := range v.nHarm {
		v.tilt[k] = math.Pow(float64(k+1), -slope)
	}
	v.nFormants = 2 + rng.IntN(2)
	v.bw = [3]float64{80 + 50*rng.Float64(), 100 + 60*rng.Float64(), 120 + 80*rng.Float64()}
	v.f3 = 2300 + 700*rng.Float64()
	v.vibRate = 4.5 + 1.5*rng.Float64()
	v.vibDepth = 0.004 + 0.006*rng.Float64()
	v.intoRate = 0.3 + 0.4*rng.Float64()
	v.intoDepth = 0.03 + 0.03*rng.Float64()
	v.newVowel()
	v.formant = v.target
	// Start in a pause, as a speaker does before the first word.
	v.segLeft = v.pauseLen()
	return v
}

// Fill writes the next len(pcm) samples of the voice at 48 kHz.
func (v *Voice) Fill(pcm []int16) {
	for i := range pcm {
		if v.blockLeft == 0 {
			v.nextBlock()
		}
		v.blockLeft--

		// Advance the fundamental's phasor and sum the harmonics with the
		// Chebyshev recurrence sin((k+1)φ) = 2cosφ·sin(kφ) − sin((k−1)φ):
		// one rotation per sample instead of a sine per harmonic.
		c, s := v.cos, v.sin
		c, s = c*v.rotCos-s*v.rotSin, s*v.rotCos+c*v.rotSin
		v.cos, v.sin = c, s
		prev, cur := 0.0, s
		sum := v.amp[0] * cur
		twoC := 2 * c
		for k := 1; k < v.nHarm; k++ {
			prev, cur = cur, twoC*cur-prev
			sum += v.amp[k] * cur
		}
		x := v.gain*sum + v.noiseSample()
		v.gain += v.gainStep
		pcm[i] = int16(max(-32768, min(32767, math.Round(x))))
	}
}

// noiseSample is the microphone's noise floor: xorshift64, uniform.
func (v *Voice) noiseSample() float64 {
	x := v.noise
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	v.noise = x
	return noiseFloor * (float64(x>>11)/(1<<53)*2 - 1)
}

// nextBlock moves the talk/pause and syllable state on by one block and
// sets the block's pitch, harmonic amplitudes and envelope ramp.
func (v *Voice) nextBlock() {
	v.blockLeft = blockLen
	env := 0.0
	if v.talking {
		env = v.talkBlock()
	} else {
		v.segLeft -= blockLen
		if v.segLeft <= 0 {
			v.startSpurt()
		}
	}
	v.gainStep = (env*voicePeak - v.gain) / blockLen

	// Pitch: declination over the spurt, slow intonation, the syllable's
	// accent and a small vibrato.
	dt := float64(blockLen) / voiceRate
	v.vibPhase = math.Mod(v.vibPhase+2*math.Pi*v.vibRate*dt, 2*math.Pi)
	v.intoPhase = math.Mod(v.intoPhase+2*math.Pi*v.intoRate*dt, 2*math.Pi)
	v.accent += (v.accentT - v.accent) * 0.05 // ~20 ms glide
	decl := 0.0
	if v.spurtLen > 0 {
		decl = 0.06 - 0.12*float64(v.spurtPos)/float64(v.spurtLen)
	}
	f0 := v.baseF0 * (1 + decl + v.intoDepth*math.Sin(v.intoPhase) + v.accent) *
		(1 + v.vibDepth*math.Sin(v.vibPhase))
	f0 = min(maxF0, max(minF0, f0))
	w := 2 * math.Pi * f0 / voiceRate
	v.rotCos, v.rotSin = math.Cos(w), math.Sin(w)
	// Keep the phasor on the unit circle despite rounding.
	r := math.Hypot(v.cos, v.sin)
	v.cos, v.sin = v.cos/r, v.sin/r

	// Formants glide toward the syllable's vowel.
	for j := range v.formant {
		v.formant[j] += (v.target[j] - v.formant[j]) * 0.03
	}
	formants := [3]float64{v.formant[0], v.formant[1], v.f3}
	var total float64
	for k := range v.nHarm {
		f := float64(k+1) * f0
		g := 1.0
		for j := range v.nFormants {
			g *= resonance(f, formants[j], v.bw[j])
		}
		v.amp[k] = v.tilt[k] * g
		total += v.amp[k]
	}
	// The waveform's peak is about crestFactor times the amplitudes' sum,
	// so dividing by both puts an envelope of 1 near voicePeak whatever
	// the vowel.
	for k := range v.nHarm {
		v.amp[k] /= total * crestFactor
	}
}

// resonance is the gain at f of a two-pole resonator at fc with bandwidth
// bw, 1 at 0 Hz and about fc/bw at its peak: formants in cascade, as in
// Klatt's synthesiser, so each formant also tilts the spectrum above it.
func resonance(f, fc, bw float64) float64 {
	x := f / fc
	d := 1 - x*x
	e := f * bw / (fc * fc)
	return 1 / math.Sqrt(d*d+e*e)
}

// crestFactor is the peak of Σ a_k·sin(kφ) over Σ a_k for the tilts and
// formants above, measured over many seeds (TestVoiceTalkAndPause checks
// the resulting peaks).
const crestFactor = 0.8

// talkBlock advances the current syllable and spurt by one block and
// returns the envelope at the block's end.
func (v *Voice) talkBlock() float64 {
	v.sylPos += blockLen
	v.spurtPos += blockLen
	if v.sylPos >= v.sylLen {
		if v.spurtPos >= v.spurtLen {
			v.talking = false
			v.spurtLen, v.spurtPos = 0, 0
			v.segLeft = v.pauseLen()
			v.accentT = 0
			return 0
		}
		v.newSyllable()
	}
	// A syllable rises and falls; the power shapes a broad vowel nucleus.
	x := float64(v.sylPos) / float64(v.sylLen)
	return v.sylAmp * math.Pow(math.Sin(math.Pi*x), 0.7)
}

func (v *Voice) startSpurt() {
	v.talking = true
	v.spurtLen = int((1 + 3*v.rng.Float64()) * voiceRate) // 1–4 s
	v.spurtPos = 0
	v.newSyllable()
}

// newSyllable starts a syllable at 4–5 per second, with its own loudness,
// vowel and pitch accent.
func (v *Voice) newSyllable() {
	rate := 4 + v.rng.Float64()
	v.sylLen = int(voiceRate / rate * (0.85 + 0.3*v.rng.Float64()))
	v.sylPos = 0
	v.sylAmp = 0.55 + 0.45*v.rng.Float64()
	v.accentT = 0.05 * (2*v.rng.Float64() - 1)
	v.newVowel()
}

func (v *Voice) newVowel() {
	v.target[0] = 300 + 500*v.rng.Float64()  // F1
	v.target[1] = 900 + 1300*v.rng.Float64() // F2
}

// pauseLen is a pause between spurts: 0.3–1.5 s.
func (v *Voice) pauseLen() int {
	return int((0.3 + 1.2*v.rng.Float64()) * voiceRate)
}
