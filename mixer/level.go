package mixer

import "math"

// SilentLevel is the RFC 6464 level of digital silence: -127 dBov.
const SilentLevel = 127

// QuietLevel is the RFC 6464 level (-50 dBov) from which a frame counts as
// a pause: where a jitter buffer may drop or insert time unheard.
const QuietLevel = 50

// Level returns the RFC 6464 audio level of pcm: its RMS in -dBov, 0 (full
// scale) to 127 (silence).
func Level(pcm []int16) uint8 {
	if len(pcm) == 0 {
		return SilentLevel
	}
	var sum float64
	for _, s := range pcm {
		v := float64(s)
		sum += v * v
	}
	return levelFromMeanSquare(sum / float64(len(pcm)))
}

func levelFromMeanSquare(ms float64) uint8 {
	if ms <= 0 {
		return SilentLevel
	}
	// dBov relative to a full-scale square wave (RMS 32768).
	db := 10 * math.Log10(ms/(32768.0*32768.0))
	if db <= -SilentLevel {
		return SilentLevel
	}
	if db >= 0 {
		return 0
	}
	return uint8(math.Round(-db))
}
