package jitter

import (
	"time"

	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/tsm"
)

// PlayerConfig holds a player's settings. Its zero value works.
type PlayerConfig struct {
	Buffer Config // the player's jitter buffer; the zero value takes Config's defaults
	// NoStretch turns time-stretching off: the buffer steers its level by
	// whole frames in quiet moments (MarkQuiet), as a Buffer used alone
	// does. Default off (stretching on).
	NoStretch bool
}

// Player plays one incoming Opus stream out, 20 ms at a time: a Buffer,
// an Opus decoder, and what turns the buffer's answers into PCM. It
// decodes packets (a 40 or 60 ms packet covers several calls of Next),
// recovers a lost frame from the next packet's in-band FEC, conceals a
// missing one with the decoder's PLC, fades concealment that goes on too
// long to silence (codec.FadeConcealed), and plays silence before the
// stream starts and through DTX pauses.
//
// It steers the buffer's playout level (Stats.PlayoutLevel: how far
// behind the fastest packet of the last 2 s it plays) toward the target
// by time-stretching what it decodes (package tsm, NetEQ's accelerate and
// preemptive expand), one pitch period (2.5–15 ms) per tick where the
// audio is periodic enough or quiet: below the band from 2.5 ms under to
// 17.5 ms over the target plus a 5 ms reserve it expands, above it it
// accelerates back to 2.5 ms over. When the next packet is not there on a
// link with jitter, it stretches the audio it holds to give the packet
// time, rather than conceal, and a packet just decoded with none after it
// is stretched so that 10 ms of it stay held for that. The counters
// RemovedSamplesForAcceleration and InsertedSamplesForDeceleration count
// what was stretched. Whole packets are dropped only when the level is
// more than FarAboveTarget over target (Stats.DroppedSamples) or when
// they are DTX, and silence is inserted whole only after digital silence.
//
// The network side pushes packets into Buffer from any goroutine; Next
// must be called from one goroutine at a time, once per 20 ms tick.
type Player struct {
	buf *Buffer
	dec *codec.Decoder

	// Decoded audio not played yet: a 60 ms packet covers three ticks,
	// and time-stretching leaves a part of a frame over, or adds a pitch
	// period (room for it beyond the longest packet).
	fifo    [codec.MaxFrameSamples + codec.FrameSamples + tsm.MaxPeriod]int16
	fifoLen int
	audible bool    // the frame being assembled holds the stream's audio
	fade    float32 // gain applied to long concealment; 1 when not fading
	silent  bool    // the last frame played was digital silence
	misses  int     // steering stretches in a row that found no period good enough
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
	// DTX pauses, and inserted (after digital silence) to slow the buffer
	// down.
	SilentSamples int
	// Accelerated and Expanded are the samples time-stretching removed
	// and inserted to steer the buffer's level (at most one stretch, of
	// one pitch period, per call).
	Accelerated, Expanded int
}

// NewPlayer returns a player with an empty buffer and a fresh decoder; it
// allocates everything it will use.
func NewPlayer(cfg PlayerConfig) (*Player, error) {
	dec, err := codec.NewDecoder()
	if err != nil {
		return nil, err
	}
	p := &Player{buf: New(cfg.Buffer), dec: dec, fade: 1}
	p.buf.stretching = !cfg.NoStretch
	return p, nil
}

// Buffer is the player's jitter buffer: Push packets into it, read its
// Stats, and tell it with MarkQuiet whether the last frame was quiet.
func (p *Player) Buffer() *Buffer { return p.buf }

// Next writes the next 20 ms of the stream, due at now (see Buffer.Pop), into
// dst[:codec.FrameSamples] (dst must be at least that long) and says what
// it played. It pops the buffer as often as it takes to cover 20 ms, and
// keeps what a longer packet decodes beyond that for the next calls.
func (p *Player) Next(now time.Time, dst []int16) Played {
	dst = dst[:codec.FrameSamples]
	var pl Played
	p.audible = p.fifoLen > 0 && p.audible
	stretches, bridges := 0, 0
	for p.fifoLen < codec.FrameSamples {
		p.buf.setHeld(p.fifoLen, p.silent)
		if p.buf.stretching && bridges < maxBridges && p.fifoLen >= 2*tsm.MinPeriod && p.buf.starved() {
			// Nothing to play next (a late packet, or a loss): stretch
			// what is held rather than conceal, and give the packet the
			// time.
			if p.stretch(-1, -1, 0, &pl) {
				bridges++
				continue
			}
		}
		f := p.buf.Pop(now)
		decoded := pl.DecodedSamples + pl.RecoveredSamples
		p.fifoLen += p.play(f, &pl)
		if p.buf.stretching && stretches == 0 && bridges == 0 && pl.DecodedSamples+pl.RecoveredSamples > decoded {
			stretches = p.steer(&pl) + p.keep(&pl)
		}
	}
	copy(dst, p.fifo[:codec.FrameSamples])
	p.fifoLen = copy(p.fifo[:], p.fifo[codec.FrameSamples:p.fifoLen])
	p.silent = isSilent(dst)
	p.buf.setHeld(p.fifoLen, p.silent)
	pl.Audible = p.audible
	return pl
}

// steer stretches the audio held, just decoded, the way the buffer's
// level asks, and returns the stretches done: one, or up to maxBridges
// while the level is more than 40 ms off (steer's threshold -1), so that
// a target that fell 60 ms is reached within a tick or two.
func (p *Player) steer(pl *Played) int {
	n := 0
	for n < maxSteers {
		dir, threshold, limit := p.buf.steer()
		if n > 0 && threshold >= 0 {
			break
		}
		// Continuous music may never reach NetEQ's correlation: after
		// missesUrgent tries in a row the stretch takes a less periodic
		// lag, after missesDesperate the best there is. An expansion is
		// a packet's due time getting near: sooner.
		urgent, desperate := missesUrgent, missesDesperate
		if dir < 0 {
			urgent, desperate = expandUrgent, expandDesperate
		}
		switch {
		case p.misses >= desperate:
			threshold = -1
		case p.misses >= urgent:
			threshold = min(threshold, urgentThreshold)
		}
		switch {
		case p.stretch(dir, threshold, limit, pl):
			n++
			p.misses = 0
			continue
		case dir != 0:
			p.misses++
		default:
			p.misses = 0
		}
		break
	}
	return n
}

// keep expands the audio just decoded, one pitch period at a time, when
// the packet to play after it is not there yet on a link that jitters
// (Buffer.keeps) and this tick would leave less than keepHeld held: a
// packet that then comes late is bridged by stretching what is held
// (Next) instead of being concealed. On a link whose packets keep their
// order, a late packet holds back those behind it and the buffer runs
// empty, having played its last packet to the end: in a traced simulated run (60 ± 30 ms, in
// order) every concealment mid-stream came so, with under 3 ms held, and
// the packet arrived a tick later. It returns the stretches done.
func (p *Player) keep(pl *Played) int {
	n := 0
	for n < maxKeeps && p.fifoLen-codec.FrameSamples < keepHeld && p.buf.keeps() && p.stretch(-1, urgentThreshold, 0, pl) {
		n++
	}
	return n
}

// maxSteers bounds the stretches that steer the level in one call of
// Next: one, or up to three while it is more than 40 ms off. maxBridges
// bounds those that bridge a packet not there yet: each inserts at most
// half of what is held, so 5 ms held takes four to fill a frame.
const (
	maxSteers  = 3
	maxBridges = 6
)

// keepHeld is what keep holds back: a bridge stretches by a pitch period
// at most half of what is held, so 10 ms lets periods up to 5 ms (a voice
// above 200 Hz) bridge at once, and longer ones after a bridge or two.
// Over seeds 1-16 of the four jitter scenarios, against none: 5 ms
// concealed 19-30% fewer frames, and the frames dropped or concealed
// stayed within the seeds' spread; 10 ms (on links that jitter,
// Buffer.keeps) 21-35% fewer concealed and 11-31% fewer dropped or
// concealed, the delay within a millisecond; 15 ms (seeds 1-8, before
// the gate) fewer still, for 2-2.5 ms more delay than 10 ms
// (docs/weak-networks.md). maxKeeps bounds keep's stretches in a call of
// Next.
const (
	keepHeld = 4 * tsm.MinPeriod // 10 ms
	maxKeeps = 3
)

// Steering stretches that found no period good enough, in a row, before
// the threshold is lowered: 200 ms and 500 ms of decoded frames to
// accelerate, 60 and 160 ms to expand (the level is then within 2.5 ms of
// a packet's due time, which a sender 1% slow covers in 12 ticks).
const (
	missesUrgent    = 10
	missesDesperate = 25
	expandUrgent    = 3
	expandDesperate = 8
)

// stretch time-stretches the audio held unplayed: accelerate (dir > 0) or
// expand (dir < 0) by one pitch period, at the given correlation
// threshold; it reports whether it did. An acceleration removes at most
// limit samples when limit is set, and never leaves less than a frame
// held unless the buffer has more to play.
func (p *Player) stretch(dir int, threshold float64, limit int, pl *Played) bool {
	var r tsm.Result
	switch {
	case dir > 0:
		if limit <= 0 {
			limit = tsm.MaxPeriod
		}
		if !p.buf.hasNext() {
			limit = min(limit, p.fifoLen-codec.FrameSamples)
		}
		if limit < tsm.MinPeriod {
			return false
		}
		p.fifoLen, r = tsm.Accelerate(p.fifo[:p.fifoLen], limit, threshold)
		pl.Accelerated += r.Period
		p.buf.noteStretch(r.Period)
	case dir < 0:
		p.fifoLen, r = tsm.PreemptiveExpand(p.fifo[:p.fifoLen:min(len(p.fifo), p.fifoLen+tsm.MaxPeriod)], limit, threshold)
		pl.Expanded += r.Period
		p.buf.noteStretch(-r.Period)
	}
	return r.Period > 0
}

// isSilent reports digital silence: no sample beyond ±1.
func isSilent(pcm []int16) bool {
	for _, v := range pcm {
		if v > 1 || v < -1 {
			return false
		}
	}
	return true
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
