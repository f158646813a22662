package engine

import (
	"testing"
	"time"
)

// splitRun drives a splitter through ticks whose send costs perSink on
// one worker and whose parts run side by side (each part's wall time
// the total over the parts), and returns the parts of each tick.
func splitRun(s *sendSplitter, ticks, sinks, minParts, workers int, after, perSink time.Duration) []int {
	var got []int
	for range ticks {
		p := s.next(sinks, minParts, workers, after)
		got = append(got, p)
		s.observe(perSink*time.Duration(sinks)/time.Duration(p), p, sinks)
	}
	return got
}

// A room whose sends would take one worker longer than SplitSendAfter
// splits them, stays split while one part fewer would not be well under
// it, and joins them again when the load falls; the count rule and the
// workers bound it.
func TestSendSplitterFollowsTheSendTime(t *testing.T) {
	const sinks, workers, after = 10000, 2, DefaultSplitSendAfter
	var s sendSplitter
	// 10 ms a tick on one worker: under 14 ms, one part.
	for _, p := range splitRun(&s, 50, sinks, 1, workers, after, time.Microsecond) {
		if p != 1 {
			t.Fatalf("10 ms of sends: %d parts, want 1", p)
		}
	}
	// The machine slows: 16 ms. The average crosses 14 ms within a
	// third of a second or so, and the room splits.
	got := splitRun(&s, 50, sinks, 1, workers, after, 1600*time.Nanosecond)
	first := -1
	for i, p := range got {
		if p == 2 && first < 0 {
			first = i
		}
		if first >= 0 && p != 2 {
			t.Fatalf("16 ms of sends: parts %v: split at tick %d, then %d parts", got, first, p)
		}
	}
	if first < 1 || first > 30 {
		t.Fatalf("16 ms of sends: parts %v, want a split after 1 to 30 ticks", got)
	}
	// 12 ms on one worker: between 8 and 14 ms, it stays as it is.
	if got := splitRun(&s, 100, sinks, 1, workers, after, 1200*time.Nanosecond); got[99] != 2 {
		t.Fatalf("12 ms of sends while split: parts %v, want 2", got)
	}
	// 6 ms: one part would be well under the line; the parts join.
	got = splitRun(&s, 100, sinks, 1, workers, after, 600*time.Nanosecond)
	if got[0] != 2 || got[99] != 1 {
		t.Fatalf("6 ms of sends while split: parts %v, want 2 joining to 1", got)
	}
	// Never more parts than workers, never fewer than the count rule.
	if got := splitRun(&s, 100, sinks, 1, workers, after, 5*time.Microsecond); got[99] != workers {
		t.Fatalf("50 ms of sends: parts %d, want the %d workers", got[99], workers)
	}
	var c sendSplitter
	if got := splitRun(&c, 5, 30000, 3, 4, after, time.Nanosecond); got[4] != 3 {
		t.Fatalf("30,000 sinks, 12,000 a part: parts %v, want 3", got)
	}
	// Negative: the count rule alone, however slow.
	var n sendSplitter
	if got := splitRun(&n, 50, sinks, 1, workers, -1, 5*time.Microsecond); got[49] != 1 {
		t.Fatalf("SplitSendAfter < 0: parts %v, want 1", got)
	}
}

// One stalled tick does not split a room: it counts as twice the average
// at most.
func TestSendSplitterIgnoresAStall(t *testing.T) {
	const sinks = 10000
	var s sendSplitter
	splitRun(&s, 50, sinks, 1, 2, DefaultSplitSendAfter, time.Microsecond) // 10 ms
	s.observe(200*time.Millisecond, 1, sinks)
	if p := s.next(sinks, 1, 2, DefaultSplitSendAfter); p != 1 {
		t.Fatalf("after one tick of 200 ms among ticks of 10 ms: %d parts, want 1", p)
	}
}
