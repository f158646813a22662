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
	if len(pcm) == 0 {
		return 0
	}
	w := 2 * math.Pi * freq / 48000
	coeff := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range pcm {
		s0 := float64(v)/32768 + coeff*s1 - s2
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
