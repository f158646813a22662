package jitter

import (
	"time"

	"github.com/handsup-audio/handsup/codec"
)

// PlayerConfig holds a player's settings. Its zero value works.
type PlayerConfig struct {
	Buffer Config // the player's jitter buffer; the zero value takes Config's defaults
}

// Player plays one incoming Opus stream out, 20 ms at a time: a Buffer,
// an Opus decoder, and what turns the buffer's answers into PCM. It
// decodes packets (a 40 or 60 ms packet covers several calls of Next),
// recovers a lost frame from the next packet's in-band FEC, conceals a
// missing one with the decoder's PLC, fades concealment that goes on too
// long to silence (codec.FadeConcealed), and plays silence before the
// stream starts and through DTX pauses.
//
// The network side pushes packets into Buffer from any goroutine; Next
// must be called from one goroutine at a time, once per 20 ms tick.
type Player struct {
	buf *Buffer
	dec *codec.Decoder

	// Decoded audio not played yet: a 60 ms packet covers three ticks.
	fifo    [codec.MaxFrameSamples + codec.FrameSamples]int16
	fifoLen int
	audible bool    // the frame being assembled holds the stream's audio
	fade    float32 // gain applied to long concealment; 1 when not fading
}

// Played says what one call of Next played. The counts are of the jitter
// buffer's answers played during the call, and the samples (48 kHz) of
// what each kind produced: a 60 ms packet is decoded, and counted, by the
// call that starts playing it.
type Played struct {
	// Audible reports whether the frame holds the stream's audio (decoded,
	// recovered from FEC or concealed) rather than silence: a mixer leaves
	// an inaudible frame out. Concealment faded to nothing is not audible.
	Audible bool

	Decoded   int // packets decoded
	Recovered int // lost frames recovered from the next packet's in-band FEC
	Concealed int // frames concealed (PLC) because their packet was missing
	// Failed counts packets, or FEC data, that failed to decode; each
	// was concealed instead, and is not counted in Concealed.
	Failed int

	DecodedSamples   int // samples decoded from packets
	RecoveredSamples int // samples recovered from in-band FEC
	ConcealedSamples int // samples concealed for missing packets
	FailedSamples    int // samples concealed for packets that failed to decode
	// SilentSamples is the silence played: before the stream started, in
	// DTX pauses, and inserted to slow the buffer down.
	SilentSamples int
}

// NewPlayer returns a player with an empty buffer and a fresh decoder; it
// allocates everything it will use.
func NewPlayer(cfg PlayerConfig) (*Player, error) {
	dec, err := codec.NewDecoder()
	if err != nil {
		return nil, err
	}
	return &Player{buf: New(cfg.Buffer), dec: dec, fade: 1}, nil
}

// Buffer is the player's jitter buffer: Push packets into it, read its
// Stats, and tell it with MarkQuiet whether the last frame was quiet.
func (p *Player) Buffer() *Buffer { return p.buf }

// Next writes the next 20 ms of the stream, at time now, into
// dst[:codec.FrameSamples] (dst must be at least that long) and says what
// it played. It pops the buffer as often as it takes to cover 20 ms, and
// keeps what a longer packet decodes beyond that for the next calls.
func (p *Player) Next(now time.Time, dst []int16) Played {
	dst = dst[:codec.FrameSamples]
	var pl Played
	p.audible = p.fifoLen > 0 && p.audible
	for p.fifoLen < codec.FrameSamples {
		p.fifoLen += p.play(p.buf.Pop(now), &pl)
	}
	copy(dst, p.fifo[:codec.FrameSamples])
	p.fifoLen = copy(p.fifo[:], p.fifo[codec.FrameSamples:p.fifoLen])
	pl.Audible = p.audible
	return pl
}

// play writes one answer of the buffer into the FIFO, notes it in pl, and
// returns the samples it added.
func (p *Player) play(f Frame, pl *Played) int {
	samples := f.Samples
	if samples <= 0 {
		samples = codec.FrameSamples
	}
	samples = min(samples, len(p.fifo)-p.fifoLen)
	dst := p.fifo[p.fifoLen : p.fifoLen+samples]
	switch f.Kind {
	case Decode:
		if n, err := p.dec.Decode(f.Payload, p.fifo[p.fifoLen:]); err == nil && n > 0 {
			return p.decoded(&pl.Decoded, &pl.DecodedSamples, n)
		}
		return p.failed(dst, pl)
	case DecodeFEC:
		if p.dec.DecodeFEC(f.Payload, dst) == nil {
			return p.decoded(&pl.Recovered, &pl.RecoveredSamples, samples)
		}
		return p.failed(dst, pl)
	case Conceal:
		pl.Concealed++
		pl.ConcealedSamples += samples
		return p.conceal(dst, f.Fading)
	default:
		pl.SilentSamples += samples
		clear(dst)
		return samples
	}
}

// decoded notes n samples of the stream's own audio, decoded or recovered,
// in count and total, and returns n.
func (p *Player) decoded(count, total *int, n int) int {
	*count++
	*total += n
	p.audible, p.fade = true, 1
	return n
}

// failed conceals dst in place of a packet, or FEC data, that did not
// decode.
func (p *Player) failed(dst []int16, pl *Played) int {
	pl.Failed++
	pl.FailedSamples += len(dst)
	return p.conceal(dst, false)
}

// conceal runs the decoder's PLC into dst; a long loss fades to silence
// rather than buzz, and stays silent until audio comes back.
func (p *Player) conceal(dst []int16, fading bool) int {
	if p.fade == 0 || p.dec.Conceal(dst) != nil {
		clear(dst)
		return len(dst)
	}
	p.audible = true
	if fading {
		codec.FadeConcealed(dst, &p.fade)
	}
	return len(dst)
}
