package engine

import (
	"time"
	"unsafe"

	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/internal/prefetch"
	"github.com/handsup-audio/handsup/mixer"
)

// participantHotBytes are the bytes of a Participant that a tick reads
// for every member: the fields before out.runs.
const participantHotBytes = unsafe.Offsetof(Participant{}.out) + unsafe.Offsetof(outStream{}.runs)

// prefetchAhead is how many listeners ahead of its send a tick starts
// loading a listener's state (and the sink's, Prefetcher), and half of it
// what the sink's state points to. A listener's send takes 50-100 ns
// here, about one load from memory: two ahead, the loop still stalled on
// the participant's first line and on the sink's destination.
const prefetchAhead = 4

// delaySampleTicks is how often the tick samples speakers' jitter-buffer
// delay: once a second.
const delaySampleTicks = 50

// runTick mixes and sends one 20 ms frame for the whole room: it builds
// the tick's packets under the room's lock, then sends them (Send,
// AfterTick) with the lock released. The frame is due at due: the
// speakers' jitter buffers play as of then, not as of when the room's
// turn in a late or crowded tick came (see buildTickLocked). It says how
// long the room's encodes took.
func (r *Room) runTick(due time.Time) (encodes time.Duration) {
	start := time.Now()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return 0
	}
	encodes = r.buildTickLocked(due)
	sinks := len(r.members)
	r.mu.Unlock()
	built := time.Now()
	if r.cfg.Send != nil {
		parts := r.splitter.next((sinks+r.cfg.SendSplit-1)/r.cfg.SendSplit, r.eng.cfg.Workers, r.cfg.SplitSendAfter)
		r.eng.split(r, parts)
		r.splitter.observe(time.Since(built), parts)
		if parts > 1 {
			r.counters.splitSends.Add(1)
		}
	}
	if r.cfg.AfterTick != nil {
		r.cfg.AfterTick()
	}
	c := &r.counters
	c.buildTime.Add(int64(built.Sub(start) - encodes))
	c.encodeTime.Add(int64(encodes))
	c.sendTime.Add(int64(time.Since(built)))
	return encodes
}

// buildTickLocked mixes the room's frame, due at due, encodes it and
// hands each participant its packet.
//
// The jitter buffers are popped as of due, the tick's slot on the clock's
// 20 ms grid: a Player steers its playout level, measured at each Pop,
// and a level read at a late tick (the machine stalled, or the room came
// last of many) is as high as the tick was late. Steered down there, it
// was that much short at the next tick on time, and the packet due then
// had to arrive ahead of the fastest of the last two seconds: with rooms
// in phases, a tick late by 3-7 ms took the speakers of its phase into
// concealment at the next (100 rooms, 4 phases: 2-38 events a run). A
// packet that arrives between the slot and the late Pop still plays.
// It returns how long the encodes took.
func (r *Room) buildTickLocked(due time.Time) (encodes time.Duration) {
	// The stream clock advances over the ticks the engine skipped too, so
	// every output's timestamps stay on real time: a receiver sees a gap it
	// conceals, not a slip of everything after it. Sequence numbers stay
	// contiguous (RTP's loss detection), as send numbers packets, not ticks.
	skipped, prev := r.eng.skipped.Load()+r.ph.skipped.Load(), r.tick
	r.tick += 1 + (skipped - r.skipSeen)
	r.skipSeen = skipped
	t := r.tick
	c := &r.counters
	c.ticks.Add(1)

	for _, p := range r.speakers {
		p.in.Load().nextFrame(due, p.muted, c)
	}
	if t/delaySampleTicks != prev/delaySampleTicks { // once a second, skipped ticks or not
		for _, p := range r.speakers {
			p.in.Load().sampleDelay(&c.delay)
		}
	}
	r.mix.Mix()
	voices := 0 // in the mix this tick
	for _, p := range r.speakers {
		in := p.in.Load()
		in.player.Buffer().MarkQuiet(in.src.Level() >= mixer.QuietLevel)
		if in.src.Mixed() {
			voices++
		}
	}

	// Speakers whose voice is in the mix, or was within the hangover, hear
	// their own mix-minus; everyone else hears their tier's shared encoder.
	tierUsers := r.tierCount
	shed := r.eng.shed.complexity()
	var sent tally
	defer sent.flush(c)
	for _, p := range r.speakers {
		if !r.wantsPrivateLocked(p, t) {
			r.releasePrivateLocked(p)
			continue
		}
		if p.private == nil {
			if p.private = r.takeEncoderLocked(); p.private == nil {
				continue
			}
		}
		tierUsers[p.ts.tier]--
		o := p.private
		r.tuneLocked(o, p.ts.tier)
		own := 0
		if p.in.Load().src.Mixed() {
			own = 1
		}
		silent := voices-own == 0 // its mix-minus holds no one else's voice
		r.dtxLocked(o, silent)
		if silent && o.skipSilence(t) {
			p.out.send(t, o, r.tiers[p.ts.tier].RED, p.sink, &sent) // a DTX gap: nothing sent
			continue
		}
		r.mix.MixMinus(p.in.Load().src, &o.lim, o.pcm[:])
		encodes += o.encode(o.pcm[:], t, shed, c)
		p.out.send(t, o, r.tiers[p.ts.tier].RED, p.sink, &sent)
	}
	encoded := false
	for i, n := range tierUsers[:len(r.tiers)] {
		if n == 0 {
			continue
		}
		if !encoded { // the room's mix, limited once for every tier
			r.mix.Room(&r.roomLim, r.roomPCM[:])
			encoded = true
		}
		r.dtxLocked(r.outputs[i], voices == 0)
		encodes += r.outputs[i].encode(r.roomPCM[:], t, shed, c)
	}
	if !encoded {
		return encodes
	}
	ahead, members := r.ahead, r.members
	for j := range min(prefetchAhead, len(members)) { // the first few
		prefetch.Bytes(unsafe.Pointer(members[j]), participantHotBytes)
		if ahead[j] != nil {
			ahead[j].Prefetch(2)
		}
	}
	for i, p := range members {
		if j := i + prefetchAhead; j < len(members) {
			// Its own state too: 20 ms after the last tick, out of the
			// caches like the sink's.
			prefetch.Bytes(unsafe.Pointer(members[j]), participantHotBytes)
			if ahead[j] != nil {
				ahead[j].Prefetch(2)
			}
		}
		if j := i + prefetchAhead/2; j < len(ahead) && ahead[j] != nil {
			ahead[j].Prefetch(1)
		}
		if p.private == nil {
			o := r.outputs[p.ts.tier]
			p.out.send(t, o, r.tiers[o.tier].RED, p.sink, &sent)
		}
	}
	return encodes
}

// tuneLocked gives o the encoder settings of tier.
func (r *Room) tuneLocked(o *encodedOutput, tier int) {
	if o.tier == tier {
		return
	}
	if err := o.enc.Apply(r.tiers[tier].Encoder); err != nil {
		r.counters.encodeErrors.Add(1)
	}
	o.tier = tier
	o.tuned()
}

// dtxLocked runs o's encoder with DTX while its mix is silent (unless
// RoomConfig.NoDTX), and with its tier's setting otherwise.
func (r *Room) dtxLocked(o *encodedOutput, silent bool) {
	o.setDTX(r.tiers[o.tier].Encoder.DTX || (silent && !r.cfg.NoDTX), &r.counters)
}

// wantsPrivateLocked: a contributing, unmuted speaker whose voice was mixed
// within the hangover.
func (r *Room) wantsPrivateLocked(p *Participant, t uint64) bool {
	in := p.in.Load()
	if in == nil || p.muted {
		return false
	}
	if in.src.Mixed() {
		p.lastMix, p.everMix = t, true
		return true
	}
	return p.everMix && t-p.lastMix <= r.hangover
}

// takeEncoderLocked gives a private encoder, reusing a spare one.
func (r *Room) takeEncoderLocked() *encodedOutput {
	if n := len(r.spare); n > 0 {
		o := r.spare[n-1]
		r.spare = r.spare[:n-1]
		return o
	}
	enc, err := codec.NewEncoder(r.tiers[0].Encoder)
	if err != nil {
		r.counters.encodeErrors.Add(1)
		return nil
	}
	return newOutput(enc, 0)
}

// releasePrivateLocked returns p's private encoder to the spares, reset so
// its next speaker starts clean.
func (r *Room) releasePrivateLocked(p *Participant) {
	o := p.private
	if o == nil {
		return
	}
	p.private = nil
	if o.enc.Reset() != nil {
		return
	}
	o.lim = mixer.Limiter{}
	r.spare = append(r.spare, o)
}

// nextFrame fills the mixer source with the next 20 ms of this speaker:
// decoded, recovered from FEC, concealed or silent.
func (in *inputSide) nextFrame(now time.Time, muted bool, c *counters) {
	pl := in.player.Next(now, in.src.PCM)
	in.src.Present = pl.Audible && !muted
	c.addPlayed(&pl)
}
