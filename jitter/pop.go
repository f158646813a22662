package jitter

import (
	"time"

	"github.com/handsup-audio/handsup/codec"
)

// Pop says what to play next, as of now: the time the frame is due, on
// the caller's 20 ms grid of ticks. A caller running late still passes
// the due time (the level steered is measured at it); packets that
// arrived since then still play. Call it once per 20 ms tick, and again
// within the tick while the answers cover less than 20 ms (a stream of
// 10 ms packets answers 10 ms at a time). A Frame's Payload is valid
// until the next Pop.
func (b *Buffer) Pop(now time.Time) Frame {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.haveEpoch {
		return Frame{Kind: Silence, Samples: frame}
	}
	at := now.Sub(b.epoch)
	b.popAt = at
	if !b.playing && !b.startLocked(at) {
		return Frame{Kind: Silence, Samples: frame}
	}
	f := b.nextLocked(at)
	b.sinceAction += f.Samples
	b.stats.TotalSamplesReceived += uint64(f.Samples)
	return f
}

// startLocked begins playout once enough is buffered, or the oldest packet
// has waited long enough: at the start of a stream and after a pause.
func (b *Buffer) startLocked(at time.Duration) bool {
	if len(b.order) == 0 {
		return false
	}
	head := &b.slots[b.order[0]]
	target := b.effectiveTarget()
	if b.stretching {
		// A Player's level is steered within a band above the target
		// (see maxReserve): start inside it.
		target += b.reserveLocked() + expandBelow
	}
	waited := at - head.arrival
	if b.levelFromLocked(head.ts) < target && waited < samplesToDur(int64(target))-bucketWidth {
		return false
	}
	b.playing, b.playValid = true, true
	b.playTS = head.ts
	b.concealRun, b.debt = 0, 0
	b.avgLevel = float64(b.levelLocked())
	if b.stretching {
		b.avgLevel = float64(b.playoutLevelLocked())
	}
	b.sinceAction = 0
	return true
}

func (b *Buffer) levelFromLocked(from int64) int {
	last := &b.slots[b.order[len(b.order)-1]]
	return int(max(0, last.ts+int64(last.samples)-from))
}

// nextLocked chooses the next answer while playing.
func (b *Buffer) nextLocked(at time.Duration) Frame {
	b.dropPlayedLocked()
	if b.stretching {
		// Exact, and moving only with playout or the fastest packet: no
		// averaging.
		b.avgLevel = float64(b.playoutLevelLocked())
	} else {
		b.avgLevel += 0.1 * (float64(b.levelLocked()) - b.avgLevel)
	}
	if len(b.order) == 0 {
		return b.emptyLocked()
	}
	if f, ok := b.correctDriftLocked(); ok {
		return f
	}
	if len(b.order) == 0 {
		return b.emptyLocked()
	}
	s := &b.slots[b.order[0]]
	if s.ts <= b.playTS {
		return b.decodeHeadLocked(at)
	}

	gap := s.ts - b.playTS
	if b.debt > 0 {
		// Concealment already played while nothing was buffered covers
		// the start of this gap.
		skip := min(b.debt, gap)
		b.playTS += skip
		b.debt -= skip
		if gap -= skip; gap == 0 {
			return b.decodeHeadLocked(at)
		}
	}
	if b.haveLastSeq && s.seq == b.lastSeq+1 {
		return b.dtxGapLocked(gap, at)
	}
	if gap <= frame && codec.HasFEC(s.payload[:s.n]) {
		// Only the frame just before s is missing, and s carries in-band
		// FEC: it rebuilds the frame. Without it, libopus would only
		// conceal, so the frame is concealed and counted as such.
		b.playTS += gap
		b.concealRun = 0
		b.stats.FecPacketsReceived++
		n := copy(b.out[:], s.payload[:s.n])
		return Frame{Kind: DecodeFEC, Samples: int(gap), Payload: b.out[:n]}
	}
	if gap <= frame {
		b.playTS += gap
		return b.concealLocked(int(gap), b.playTS-gap)
	}
	// Conceal until only the frame that s's FEC covers is missing.
	n := int(min(frame, gap-frame))
	b.playTS += int64(n)
	return b.concealLocked(n, b.playTS-int64(n))
}

// dropPlayedLocked discards packets whose time has passed (skipped over by
// a drift correction or a gap).
func (b *Buffer) dropPlayedLocked() {
	for len(b.order) > 0 {
		s := &b.slots[b.order[0]]
		if s.ts+int64(s.samples) > b.playTS {
			return
		}
		b.removeHeadLocked()
		b.stats.PacketsDiscarded++
	}
}

// decodeHeadLocked plays the oldest packet.
func (b *Buffer) decodeHeadLocked(at time.Duration) Frame {
	s := &b.slots[b.order[0]]
	b.playTS = max(b.playTS, s.ts+int64(s.samples))
	if b.haveLastSeq && s.seq > b.lastSeq {
		b.noteLoss(s.seq - b.lastSeq - 1)
	}
	b.lastSeq, b.haveLastSeq = s.seq, true
	b.lastWasDTX = codec.IsDTX(s.payload[:s.n])
	b.concealRun, b.debt = 0, 0
	n := copy(b.out[:], s.payload[:s.n])
	b.stats.JitterBufferEmittedCount += uint64(s.samples)
	// A packet may arrive after the time its frame is due, before a late
	// Pop: it waited none.
	b.stats.JitterBufferDelay += max(0, at-s.arrival).Seconds() * float64(s.samples)
	b.stats.JitterBufferTargetDelay += samplesToDur(int64(b.effectiveTarget())).Seconds() * float64(s.samples)
	f := Frame{Kind: Decode, Samples: s.samples, Payload: b.out[:n]}
	b.removeHeadLocked()
	return f
}

// dtxGapLocked plays the silence of a sender's DTX pause (consecutive
// sequence numbers, a timestamp gap). A buffer running above target
// shortens the pause, where nobody hears it.
func (b *Buffer) dtxGapLocked(gap int64, at time.Duration) Frame {
	target := b.effectiveTarget()
	if excess := int64(b.avgLevel) - int64(target); excess > frame && b.sinceAction >= actionEvery {
		skip := min(gap, excess)
		b.playTS += skip
		b.avgLevel -= float64(skip)
		b.stats.RemovedSamplesForAcceleration += uint64(skip)
		b.sinceAction = 0
		if gap -= skip; gap == 0 {
			return b.decodeHeadLocked(at)
		}
	}
	n := int(min(frame, gap))
	b.playTS += int64(n)
	b.concealRun = 0
	return Frame{Kind: Silence, Samples: n}
}

// emptyLocked answers when nothing is buffered: silence after DTX or a long
// outage (and wait for the stream to return), concealment otherwise.
func (b *Buffer) emptyLocked() Frame {
	if b.lastWasDTX || b.concealRun >= giveUpAfter {
		b.playing = false
		b.concealRun, b.debt = 0, 0
		return Frame{Kind: Silence, Samples: frame}
	}
	b.debt += frame
	return b.concealLocked(frame, b.playTS)
}

// concealLocked answers n samples of concealment that stand in for the
// audio from timestamp from on (or, when the buffer ran empty, come
// before it).
func (b *Buffer) concealLocked(n int, from int64) Frame {
	b.concealRun++
	b.stats.LastConcealedTimestamp = uint32(from)
	if b.concealRun == 1 {
		b.stats.ConcealmentEvents++
	}
	b.stats.ConcealedSamples += uint64(n)
	if b.concealRun > silentAfter {
		b.stats.SilentConcealedSamples += uint64(n)
	}
	return Frame{Kind: Conceal, Samples: n, Fading: b.concealRun > fadeAfter}
}

// correctDriftLocked keeps the buffer near its target when a sender's
// clock runs fast or slow, or the target moved: above target it drops a
// frame, below it inserts one, preferably where the audio is quiet, at
// most once per actionEvery (more often when far above target).
func (b *Buffer) correctDriftLocked() (Frame, bool) {
	target := float64(b.effectiveTarget())
	s := &b.slots[b.order[0]]
	if s.ts > b.playTS {
		return Frame{}, false
	}
	if b.stretching {
		return b.lastResortLocked(target)
	}
	excess := b.avgLevel - target
	every := actionEvery
	if excess > 5*frame {
		every = 3 * frame
	}
	if b.sinceAction < every {
		return Frame{}, false
	}
	switch {
	// Dropping a whole packet must not overshoot into the insertion
	// band below: a 60 ms packet dropped at 40 ms excess left the buffer
	// short and the next quiet frame inserted silence back (a drop/insert
	// ping-pong).
	case excess > frame && excess-float64(s.samples) >= -frame/2 && len(b.order) > 1 && (b.quiet || excess > 3*frame):
		b.stats.RemovedSamplesForAcceleration += uint64(s.samples)
		b.dropHeadLocked()
	// Insert once the average is half a frame short. The level counts the
	// frame about to play, so it never averages a full frame below a 40 ms
	// target before the buffer runs dry: with "< -frame" a slow sender's
	// drift was corrected by concealment (an underrun every few seconds).
	case excess < -frame/2 && b.quiet:
		b.avgLevel += frame
		b.stats.InsertedSamplesForDeceleration += frame
		b.sinceAction = 0
		return Frame{Kind: Silence, Samples: frame}, true
	}
	return Frame{}, false
}
