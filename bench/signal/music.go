package signal

import (
	"math"
	"math/rand/v2"
)

// Music is a deterministic stand-in for continuous music: chords of three
// or four equal-tempered notes over a bass note, each note with a few
// harmonics, changing every 0.5 to 2 s with a 30 ms cross-fade, at about
// -12 dBFS RMS, never silent. A jitter buffer playing it has no pause to
// hide a correction in. A Music is not safe for concurrent use.
type Music struct {
	rng  *rand.Rand
	cur  chord
	prev chord
	left int // samples until the next chord
	fade int // samples into the cross-fade, fadeLen when done
	// phasor[k][j] is (cos, sin) of note j's phase, of the current chord
	// (k = 0) and the one fading out (k = 1): rotated by the note's step
	// each sample, which costs a few multiplications where math.Sin of
	// each harmonic cost most of the generator's time.
	phasor [2][maxNotes][2]float64
}

const (
	maxNotes  = 5
	musicAmp  = 3000.0 // per note, before harmonics
	musicFade = 1440   // 30 ms
)

type chord struct {
	n    int
	freq [maxNotes]float64
	step [maxNotes][2]float64 // (cos, sin) of each note's phase step
}

// startPhasors are the phasors of notes at phase 0.
var startPhasors = [maxNotes][2]float64{{1, 0}, {1, 0}, {1, 0}, {1, 0}, {1, 0}}

// NewMusic makes the music of the given seed; equal seeds give equal
// samples.
func NewMusic(seed uint64) *Music {
	m := &Music{rng: rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d)), fade: musicFade}
	m.phasor[0] = startPhasors
	m.cur = m.newChord()
	m.left = m.chordLen()
	return m
}

// newChord picks a root between A2 and A3, a major or minor triad (or a
// seventh) on it, and the root an octave down as the bass.
func (m *Music) newChord() chord {
	root := 110 * math.Pow(2, float64(m.rng.IntN(12))/12)
	third := 4
	if m.rng.IntN(2) == 0 {
		third = 3
	}
	steps := []int{0, third, 7}
	if m.rng.IntN(3) == 0 {
		steps = append(steps, 10)
	}
	c := chord{n: len(steps) + 1}
	c.freq[0] = root / 2
	for i, s := range steps {
		c.freq[i+1] = root * math.Pow(2, float64(s)/12)
	}
	for j := range c.n {
		sin, cos := math.Sincos(2 * math.Pi * c.freq[j] / voiceRate)
		c.step[j] = [2]float64{cos, sin}
	}
	return c
}

func (m *Music) chordLen() int { return 24000 + m.rng.IntN(72000) }

// Fill writes the next len(pcm) samples at 48 kHz.
func (m *Music) Fill(pcm []int16) {
	for i := range pcm {
		if m.left == 0 {
			m.prev, m.phasor[1] = m.cur, m.phasor[0]
			m.cur, m.phasor[0] = m.newChord(), startPhasors
			m.left, m.fade = m.chordLen(), 0
		}
		m.left--
		x := m.voice(0, &m.cur)
		if m.fade < musicFade {
			w := float64(m.fade) / musicFade
			x = w*x + (1-w)*m.voice(1, &m.prev)
			m.fade++
		}
		pcm[i] = int16(max(-32768, min(32767, math.Round(x))))
	}
}

// voice is the next sample of chord c, its phasors in m.phasor[k]: each
// note and its second and third harmonics (sin 2p = 2 sin p cos p,
// sin 3p = sin p (3 − 4 sin² p)).
func (m *Music) voice(k int, c *chord) float64 {
	var x float64
	ph := &m.phasor[k]
	for j := range c.n {
		cos, sin := ph[j][0], ph[j][1]
		x += musicAmp * sin * (1 + cos + 0.25*(3-4*sin*sin))
		sc, ss := c.step[j][0], c.step[j][1]
		ph[j] = [2]float64{cos*sc - sin*ss, sin*sc + cos*ss}
	}
	return x
}
