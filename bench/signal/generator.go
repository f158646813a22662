package signal

import (
	"time"

	"github.com/handsup-audio/handsup/codec"
)

// Generator is what a simulated speaker says: Fill writes its next
// len(pcm) samples at 48 kHz. *Voice is one.
type Generator interface {
	Fill(pcm []int16)
}

// Samples is the number of 48 kHz samples in d, rounded down.
func Samples(d time.Duration) int { return int(d * codec.SampleRate / time.Second) }

// toneGenerator is a continuous sine.
type toneGenerator struct {
	freq, amp float64
	pos       int
}

// NewTone is a continuous sine of freq Hz at amplitude amp (0..32767).
func NewTone(freq, amp float64) Generator { return &toneGenerator{freq: freq, amp: amp} }

func (t *toneGenerator) Fill(pcm []int16) {
	Tone(pcm, t.freq, t.amp, t.pos)
	t.pos += len(pcm)
}

// gated passes its generator through for on, then is digitally silent
// for off, and again.
type gated struct {
	src        Generator
	on, period int // samples
	pos        int
}

// Gated makes src talk for on, then fall silent (digital zero, so a DTX
// encoder stops sending) for off, repeatedly, starting with on.
func Gated(src Generator, on, off time.Duration) Generator {
	return &gated{src: src, on: Samples(on), period: Samples(on + off)}
}

func (g *gated) Fill(pcm []int16) {
	g.src.Fill(pcm) // the source runs on through the silences
	for i := range pcm {
		if (g.pos+i)%g.period >= g.on {
			pcm[i] = 0
		}
	}
	g.pos += len(pcm)
}
