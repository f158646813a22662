package signal

import "math"

// Tone fills pcm with a sine of freq Hz at amplitude amp (0..32767),
// starting at sample offset start, at 48 kHz.
func Tone(pcm []int16, freq, amp float64, start int) {
	for i := range pcm {
		pcm[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(start+i)/48000))
	}
}

// Goertzel returns the power of freq Hz in pcm (48 kHz), normalised so a
// full-scale sine at freq gives about 0.25 whatever len(pcm).
func Goertzel(pcm []int16, freq float64) float64 {
	return goertzel(pcm, nil, freq)
}

// goertzel is Goertzel's power of pcm weighted by window (nil for none, or
// as long as pcm).
func goertzel(pcm []int16, window []float64, freq float64) float64 {
	if len(pcm) == 0 {
		return 0
	}
	coeff := 2 * math.Cos(2*math.Pi*freq/48000)
	var s1, s2 float64
	for i, v := range pcm {
		x := float64(v) / 32768
		if window != nil {
			x *= window[i]
		}
		s0 := x + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	p := s1*s1 + s2*s2 - coeff*s1*s2
	n := float64(len(pcm))
	return p / (n * n)
}

// ToneDB is Goertzel's power in dB relative to a full-scale sine: 0 dB for
// a full-scale tone, about -20 dB for a tone at a tenth of full scale.
func ToneDB(pcm []int16, freq float64) float64 {
	p := Goertzel(pcm, freq)
	if p <= 0 {
		return -200
	}
	return 10 * math.Log10(p/0.25)
}

// levelBlock is ToneLevelDB's block: 20 ms at 48 kHz, one Opus frame.
const levelBlock = 960

// levelWindow is a Hann window over levelBlock samples, normalised so a
// full-scale sine at a block's frequency gives Goertzel power 0.25 as an
// unwindowed one does.
var levelWindow = func() [levelBlock]float64 {
	var w [levelBlock]float64
	var sum float64
	for i := range w {
		w[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/levelBlock)
		sum += w[i]
	}
	for i := range w {
		w[i] *= levelBlock / sum
	}
	return w
}()

// ToneLevelDB is the power of freq Hz in pcm (48 kHz) in dB relative to a
// full-scale sine, as ToneDB, but averaged over 20 ms Hann-windowed blocks
// (a shorter tail is dropped) instead of correlated over the whole signal.
// ToneDB needs the tone's phase to run on unbroken: a frame dropped,
// concealed or inserted anywhere (a jitter buffer adapting, a late tick)
// shifts the phase after it, and the parts before and after can cancel.
// ToneLevelDB loses only the blocks that hold the break, so it measures
// whether a tone is heard on a real-time path whatever the scheduling. The
// window keeps other tones from leaking into the level: a full-scale tone
// 150 Hz away reads below -40 dB, one 350 Hz or more away below -60 dB.
func ToneLevelDB(pcm []int16, freq float64) float64 {
	n := len(pcm) / levelBlock
	if n == 0 {
		return -200
	}
	var sum float64
	for b := range n {
		sum += goertzel(pcm[b*levelBlock:(b+1)*levelBlock], levelWindow[:], freq)
	}
	if sum <= 0 {
		return -200
	}
	return 10 * math.Log10(sum/float64(n)/0.25)
}
