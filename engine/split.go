package engine

import (
	"math"
	"time"
)

// DefaultSplitSendAfter is RoomConfig.SplitSendAfter when it is zero: 80%
// of a tick. A room's tick also builds and encodes (about 1.5 ms at 10,000
// listeners here), and the rest leaves room for the machine's hiccups.
const DefaultSplitSendAfter = TickInterval * 8 / 10

const (
	// splitAlpha is the weight of the newest tick in a room's average
	// send time: its time constant is about 16 ticks, a third of a
	// second.
	splitAlpha = 1.0 / 16
	// splitWarm is how many sends in one part a room times before its
	// first split: a few slow ticks while a room fills up split nothing.
	splitWarm = 16
	// splitProbe is how many ticks a split room sends in parts before it
	// sends one in one part again, to time it (5 s): parts on several
	// cores contend, so their own times do not say what one would take.
	splitProbe = 250
)

// sendSplitter decides how many parts a room's Send runs in. A room of
// more than RoomConfig.SendSplit sinks always splits; below that it
// splits when its sends in one part, averaged over about a third of a
// second, take longer than RoomConfig.SplitSendAfter. A split room sends
// one tick in one part every 5 s, and joins its parts again when that
// send took under 6/7 of SplitSendAfter. On loopback here two sending
// threads cost 15-45% more a datagram than one (they contend for the
// socket and the receivers' queues), so a room splits only when one
// worker would make its ticks late. Only the room's ticking goroutine
// uses it (a room's ticks never overlap).
type sendSplitter struct {
	single  float64 // ns of a send in one part, averaged
	seen    int     // sends in one part averaged, up to splitWarm
	split   bool    // the room sends in parts, by their time
	since   int     // ticks sent in parts since the last probe
	probing bool    // this tick's send, in one part, is a split room's probe
}

// next is how many parts to send the tick in: at least minParts (the
// count rule), at most maxParts (the workers).
func (s *sendSplitter) next(minParts, maxParts int, after time.Duration) int {
	p := 1
	s.probing = false
	if after <= 0 || maxParts <= 1 {
		s.split = false
	} else if s.seen >= splitWarm {
		a := float64(after)
		need := max(1, int(math.Ceil(s.single/a)))
		switch {
		case s.split && s.since >= splitProbe:
			p, s.probing, s.since = 1, true, 0 // time one tick in one part
		case s.split && s.single >= a*6/7:
			p = max(2, need)
		case need > 1:
			p, s.split = need, true
		default:
			s.split = false
		}
	}
	if s.split && !s.probing {
		s.since++
	}
	return max(min(max(p, minParts), maxParts), 1)
}

// observe folds in a tick's send: took (its wall time) in parts parts.
// Only sends in one part count. A tick the machine stalled counts as
// twice the average at most: a stall splits nothing, a machine that
// stays slow does. A split room's probe replaces the average, which is
// from before the split.
func (s *sendSplitter) observe(took time.Duration, parts int) {
	if parts != 1 || took <= 0 {
		return
	}
	x := float64(took)
	switch {
	case s.seen == 0:
		s.single = x
	case s.probing:
		s.single = min(x, 2*s.single)
	default:
		s.single += splitAlpha * (min(x, 2*s.single) - s.single)
	}
	s.seen = min(s.seen+1, splitWarm)
}
