package engine

import (
	"math"
	"time"
)

// DefaultSplitSendAfter is RoomConfig.SplitSendAfter when it is zero: 70%
// of a tick. A room's tick also builds and encodes (about 1 ms at 10,000
// listeners here), and the rest leaves room for the machine's hiccups.
const DefaultSplitSendAfter = TickInterval * 7 / 10

// splitAlpha is the weight of the newest tick in a room's average send
// cost: its time constant is about 16 ticks, a third of a second.
const splitAlpha = 1.0 / 16

// sendSplitter decides how many parts a room's Send runs in. A room of
// more than RoomConfig.SendSplit sinks always splits; below that it
// splits when its sends, timed tick by tick, would take one worker longer
// than RoomConfig.SplitSendAfter, and joins its parts again when one
// part fewer would each stay well under it (4/7 of it, 8 ms by default).
// On loopback here two sending threads cost 15-45% more a datagram than
// one (they contend for the socket and the receivers' queues), so a room
// splits only when one worker would make its ticks late. Only the
// room's ticking goroutine uses it (a room's ticks never overlap).
type sendSplitter struct {
	perSink float64 // the send's ns a sink on one worker, averaged; 0 until timed
	parts   int     // of the last tick's send
}

// next is how many parts to send the tick's sinks in: at least minParts
// (the count rule), at most maxParts (the workers).
func (s *sendSplitter) next(sinks, minParts, maxParts int, after time.Duration) int {
	p := max(s.parts, 1)
	if s.perSink > 0 && after > 0 {
		one := s.perSink * float64(sinks) // ns on one worker
		if need := int(math.Ceil(one / float64(after))); need > p {
			p = need
		} else if one < float64(after)*4/7*float64(p-1) {
			p--
		}
	} else if after <= 0 {
		p = 1
	}
	p = max(min(max(p, minParts), maxParts), 1)
	s.parts = p
	return p
}

// observe folds in a tick's send: took (its wall time) to sinks in parts.
// A send in parts on parts workers costs about took × parts on one.
func (s *sendSplitter) observe(took time.Duration, parts, sinks int) {
	if sinks <= 0 || took <= 0 {
		return
	}
	perSink := float64(took) * float64(parts) / float64(sinks)
	if s.perSink == 0 {
		s.perSink = perSink
		return
	}
	// A tick the machine stalled counts as twice the average at most: a
	// stall splits nothing, a machine that stays slow does.
	perSink = min(perSink, 2*s.perSink)
	s.perSink += splitAlpha * (perSink - s.perSink)
}
