package engine

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// splitRun drives a splitter through ticks whose send in one part takes
// single (in parts, its share each, in parallel), and returns the parts
// of each tick.
func splitRun(s *sendSplitter, ticks, minParts, workers int, after, single time.Duration) []int {
	var got []int
	for range ticks {
		p := s.next(minParts, workers, after)
		got = append(got, p)
		s.observe(single/time.Duration(p), p)
	}
	return got
}

// runs summarises parts a tick as runs, "parts×ticks".
func runs(parts []int) string {
	var out []string
	for i := 0; i < len(parts); {
		j := i
		for j < len(parts) && parts[j] == parts[i] {
			j++
		}
		out = append(out, fmt.Sprintf("%d×%d", parts[i], j-i))
		i = j
	}
	return fmt.Sprint(out)
}

// splitWithProbes: every tick in 2 parts but a probe in one every
// splitProbe+1 ticks.
func splitWithProbes(parts []int) bool {
	for i, p := range parts {
		switch {
		case p == 2:
		case p == 1 && (i == 0 || parts[i-1] == 2) && (i == len(parts)-1 || parts[i+1] == 2):
			if j := slices.Index(parts[i+1:], 1); j >= 0 && j != splitProbe {
				return false
			}
		default:
			return false
		}
	}
	return slices.Contains(parts, 2)
}

// A room whose sends in one part take longer than SplitSendAfter splits
// them once it has timed a few; stays split while a send in one part,
// timed every 5 s, is not well under it; and joins its parts when it is.
func TestSendSplitterFollowsTheSendTime(t *testing.T) {
	const workers, after = 2, DefaultSplitSendAfter // 16 ms
	ms := time.Millisecond
	var s sendSplitter
	// 40 ms from the start: the first sends are only timed.
	if got := runs(splitRun(&s, 20, 1, workers, after, 40*ms)); got != "[1×16 2×4]" {
		t.Fatalf("40 ms sends from the start: parts %s, want 16 ticks timed in one part, then 2", got)
	}

	s = sendSplitter{}
	if got := runs(splitRun(&s, 100, 1, workers, after, 10*ms)); got != "[1×100]" {
		t.Fatalf("10 ms sends: parts %s, want one part throughout", got)
	}
	// The machine slows to 20 ms: the average crosses 16 ms in a third of
	// a second or so, and the room splits; its probe every 5 s finds 20
	// ms again, and it stays split.
	got := splitRun(&s, 40+2*splitProbe, 1, workers, after, 20*ms)
	first := slices.Index(got, 2)
	if first < 10 || first > 40 {
		t.Fatalf("20 ms sends: parts %s, want a split within 10 to 40 ticks", runs(got))
	}
	if !splitWithProbes(got[first:]) {
		t.Fatalf("20 ms sends: parts %s, want split from tick %d on, with a probe in one part every %d ticks", runs(got), first, splitProbe)
	}
	// Between 6/7 of it (13.7 ms) and 16 ms, the probes keep it split.
	if got := splitRun(&s, 2*splitProbe, 1, workers, after, 15*ms); !splitWithProbes(got) {
		t.Fatalf("15 ms sends while split: parts %s, want split, with probes", runs(got))
	}
	// Back to 10 ms: the next probe joins the parts, for good.
	got = splitRun(&s, 2*splitProbe, 1, workers, after, 10*ms)
	join := slices.Index(got, 1)
	if join < 0 || join > splitProbe || slices.Contains(got[join:], 2) {
		t.Fatalf("10 ms sends while split: parts %s, want 2 until a probe, then 1", runs(got))
	}

	// Never more parts than workers, never fewer than the count rule.
	var w sendSplitter
	if got := splitRun(&w, 20, 1, workers, after, 80*ms); got[19] != workers {
		t.Fatalf("80 ms sends: %d parts, want the %d workers", got[19], workers)
	}
	var c sendSplitter
	if got := splitRun(&c, 20, 3, 4, after, ms); got[19] != 3 {
		t.Fatalf("count rule 3 parts, 1 ms sends: %d parts, want 3", got[19])
	}
	// Negative: the count rule alone, however slow.
	var n sendSplitter
	if got := runs(splitRun(&n, 50, 1, workers, -1, 80*ms)); got != "[1×50]" {
		t.Fatalf("SplitSendAfter < 0: parts %s, want 1", got)
	}
}

// A room filling up does not split: its sends' time is measured, not
// projected from its first few listeners. One stalled tick splits
// nothing: it counts as twice the average at most.
func TestSendSplitterIgnoresGrowthAndStalls(t *testing.T) {
	var s sendSplitter
	for i := range 200 { // 20 µs to 6.4 ms as 3,200 listeners join
		d := time.Duration(20+32*i) * time.Microsecond
		if p := s.next(1, 2, DefaultSplitSendAfter); p != 1 {
			t.Fatalf("tick %d, %v sends: %d parts, want 1", i, d, p)
		}
		s.observe(d, 1)
	}
	splitRun(&s, 50, 1, 2, DefaultSplitSendAfter, 10*time.Millisecond)
	s.observe(200*time.Millisecond, 1)
	if p := s.next(1, 2, DefaultSplitSendAfter); p != 1 {
		t.Fatalf("after one tick of 200 ms among ticks of 10 ms: %d parts, want 1", p)
	}
}
