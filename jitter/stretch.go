package jitter

import (
	"time"

	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/tsm"
)

// Level steering by time-stretching (a Player's buffer; see steer). The
// playout level is held between expandBelow and accelerateAbove of the
// target plus reserve, one pitch period at a time, each stretch bounded so
// that it lands inside that band. Whole packets are dropped only when the
// level is more than FarAboveTarget over target, or when they are DTX;
// silence is inserted whole only after a frame of digital silence.
const (
	// maxReserve is what the level is held above the target on a
	// jittery link. A Player takes the next packet at the first tick
	// whose 20 ms reach past what it holds, so a packet is due up to a
	// frame before it plays; a packet that is late is bridged by
	// stretching the audio held (Player.Next), which takes two periods
	// (5 ms) of it. The reserve keeps the level there. 10 ms (enough to
	// bridge at the bottom of the band) added 8 ms of delay at 60 ± 30 ms
	// (129 ms over a clean link, against 121) for no fewer frames lost
	// across both orderings.
	// On a link whose packets all come at the fastest delay there is
	// nothing to bridge, and the reserve shrinks with the target's
	// distance from the floor (see reserveLocked).
	maxReserve  = 2 * tsm.MinPeriod // 5 ms
	expandBelow = -frame / 8        // 2.5 ms under target plus reserve
	// Above accelerateAbove the level is brought down to accelerateUntil
	// (or as far as the packets in hand allow: an acceleration never
	// makes the next packet due before it is there, see Player.stretch),
	// below expandBelow up to expandUntil. The band is almost a frame
	// wide: due times fall on the ticks, 20 ms apart, and a narrow band
	// may hold no level at which a packet is due after it arrives.
	accelerateAbove = frame + expandBelow // 17.5 ms over
	accelerateUntil = -expandBelow        // 2.5 ms over
	expandUntil     = -expandBelow
	// Past urgentExcess either way, a stretch takes a less periodic lag
	// (urgentThreshold), and past desperateExcess the best lag whatever
	// it is: continuous music may never reach NetEQ's 0.9, and a level
	// left alone would run out of range.
	urgentExcess    = 3 * frame / 2 // 30 ms
	desperateExcess = 2 * frame     // 40 ms
	urgentThreshold = 0.6
)

// FarAboveTarget is how far over its target a Player's buffer may run
// before it drops whole packets (counted in Stats.DroppedSamples) rather
// than waiting for time-stretching to catch up.
const FarAboveTarget = 200 * time.Millisecond

// lastResortLocked is the whole-packet drift correction of a Player's
// buffer: drop the head packet when the level is far above target or the
// packet is DTX (silence, the level above target), insert a frame of
// silence after digital silence when the level is below target.
func (b *Buffer) lastResortLocked(target float64) (Frame, bool) {
	s := &b.slots[b.order[0]]
	n, excess := uint64(s.samples), b.avgLevel-target
	switch {
	case excess > float64(durToSamples(FarAboveTarget)) && len(b.order) > 1 && b.sinceAction >= 3*frame:
		b.dropHeadLocked()
		b.stats.DroppedSamples += n
	case excess > accelerateAbove && len(b.order) > 1 && b.sinceAction >= actionEvery && codec.IsDTX(s.payload[:s.n]):
		b.dropHeadLocked()
		b.stats.RemovedSamplesForAcceleration += n
	case excess < expandBelow && b.silent && b.sinceAction >= actionEvery:
		b.avgLevel += frame
		b.stats.InsertedSamplesForDeceleration += frame
		b.sinceAction = 0
		return Frame{Kind: Silence, Samples: frame}, true
	}
	return Frame{}, false
}

// dropHeadLocked skips the head packet to bring the level down.
func (b *Buffer) dropHeadLocked() {
	s := &b.slots[b.order[0]]
	n := s.samples
	b.playTS = s.ts + int64(n)
	b.lastSeq, b.haveLastSeq = s.seq, true
	b.lastWasDTX = false
	b.removeHeadLocked()
	b.avgLevel -= float64(n)
	b.sinceAction = 0
}

// steer says which way a Player should stretch the audio it just decoded:
// +1 accelerate, −1 expand, 0 leave it; the correlation a stretch needs
// (tsm's threshold); and the longest period it may take, so that the
// level lands between expandBelow and accelerateAbove of the target plus
// reserve.
func (b *Buffer) steer() (dir int, threshold float64, limit int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.playing {
		b.stretchDir = 0
		return 0, 0, 0
	}
	reserve := b.reserveLocked()
	excess := int(b.avgLevel) - b.effectiveTarget() - reserve
	threshold = tsm.DefaultThreshold
	// How far off: below the band, or above the target itself (the
	// reserve is no excess worth a poor stretch).
	switch abs := max(excess+reserve, -excess); {
	case abs > desperateExcess:
		threshold = -1
	case abs > urgentExcess:
		threshold = urgentThreshold
	}
	// The packet just taken was due held before it plays (see
	// maxReserve). With less than two periods held, a packet that comes
	// late cannot be bridged: when the due time is near the target (a
	// slow sender's every packet is as late as the target allows), expand
	// now, while there is a tick or two to find a period.
	due := int(b.avgLevel) - b.held - b.effectiveTarget()
	unbridgeable := b.held < 2*tsm.MinPeriod && due < -expandBelow
	switch {
	case b.stretchDir > 0 && excess <= accelerateUntil, b.stretchDir < 0 && excess >= expandUntil && !unbridgeable:
		b.stretchDir = 0
	case excess < expandBelow, unbridgeable && excess < accelerateAbove:
		b.stretchDir = -1
	case excess > accelerateAbove:
		b.stretchDir = 1
	}
	switch b.stretchDir {
	case -1:
		return -1, threshold, max(tsm.MinPeriod, accelerateAbove-excess)
	case 1:
		return 1, threshold, max(tsm.MinPeriod, excess-expandBelow)
	}
	return 0, threshold, 0
}

// keeps reports whether Player.keep should keep audio back: the buffer
// is starved, on a link whose packets jitter (RFC 3550's estimate at
// least keepJitter). A slow sender's packets, each as late as the target
// allows, are not there a tick early either, and audio kept back for
// them would only be stretched away again (on music, 1% slow: 10 times
// the stretching).
func (b *Buffer) keeps() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.jitter >= keepJitter && b.starvedLocked()
}

// keepJitter is the interarrival jitter (seconds) under which a Player
// keeps no audio back: 5 ms. A 1% slow sender's packets drift 0.2 ms
// apart each; 60 ± 30 ms of delay differs by tens of milliseconds from
// one packet to the next.
const keepJitter = 0.005

// reserveLocked is what a Player's level is held above the target: the
// full maxReserve once the target is 20 ms above its floor, none on a
// link whose packets all arrive at the fastest delay.
func (b *Buffer) reserveLocked() int {
	return min(maxReserve, (b.effectiveTarget()-durToSamples(b.cfg.MinDelay))/2)
}

// noteStretch counts samples a Player removed (n > 0) or inserted (n < 0)
// by time-stretching, and moves the level with them.
func (b *Buffer) noteStretch(n int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > 0 {
		b.stats.RemovedSamplesForAcceleration += uint64(n)
	} else {
		b.stats.InsertedSamplesForDeceleration += uint64(-n)
	}
	b.avgLevel -= float64(n)
}

// starved reports whether the buffer, playing, has nothing to play next
// that may yet come: empty (not in a DTX pause), or the next packet
// missing (and not one that the packet after it rebuilds from in-band
// FEC), on a link with jitter.
func (b *Buffer) starved() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.starvedLocked()
}

func (b *Buffer) starvedLocked() bool {
	if !b.playing || b.lastWasDTX || b.target <= durToSamples(b.cfg.MinDelay) {
		// Packets come at the fastest delay: one not there is lost, not
		// late, and waiting for it would only move the audio.
		return false
	}
	if len(b.order) == 0 {
		return true
	}
	// A missing frame the next packet's in-band FEC rebuilds is not
	// waited for: it is most likely lost, and FEC costs no delay.
	s := &b.slots[b.order[0]]
	return s.ts > b.playTS && !(s.ts-b.playTS <= frame && codec.HasFEC(s.payload[:s.n]))
}

// hasNext reports whether the buffer holds a packet to play next.
func (b *Buffer) hasNext() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.order) > 0 && b.slots[b.order[0]].ts <= b.playTS
}

// setHeld tells the buffer how much decoded audio its Player holds
// unplayed, and whether the Player's last frame was digital silence.
func (b *Buffer) setHeld(held int, silent bool) {
	b.mu.Lock()
	b.held, b.silent = held, silent
	b.mu.Unlock()
}
