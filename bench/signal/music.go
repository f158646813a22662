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
	rng   *rand.Rand
	cur   chord
	prev  chord
	left  int // samples until the next chord
	fade  int // samples into the cross-fade, fadeLen when done
	phase [2][maxNotes]float64
}

const (
	maxNotes  = 5
	musicAmp  = 3000.0 // per note, before harmonics
	musicFade = 1440   // 30 ms
)

type chord struct {
	n    int
	freq [maxNotes]float64
}

// NewMusic makes the music of the given seed; equal seeds give equal
// samples.
func NewMusic(seed uint64) *Music {
	m := &Music{rng: rand.New(rand.NewPCG(seed, seed^0x5851f42d4c957f2d)), fade: musicFade}
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
	return c
}

func (m *Music) chordLen() int { return 24000 + m.rng.IntN(72000) }

// Fill writes the next len(pcm) samples at 48 kHz.
func (m *Music) Fill(pcm []int16) {
	for i := range pcm {
		if m.left == 0 {
			m.prev, m.phase[1] = m.cur, m.phase[0]
			m.cur, m.phase[0] = m.newChord(), [maxNotes]float64{}
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

// voice is the next sample of chord c, its phases in m.phase[k].
func (m *Music) voice(k int, c *chord) float64 {
	var x float64
	for j := range c.n {
		p := m.phase[k][j]
		x += musicAmp * (math.Sin(p) + 0.5*math.Sin(2*p) + 0.25*math.Sin(3*p))
		m.phase[k][j] = math.Mod(p+2*math.Pi*c.freq[j]/voiceRate, 2*math.Pi)
	}
	return x
}
