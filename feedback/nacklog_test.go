package feedback

import (
	"slices"
	"testing"
)

func TestNACKLog(t *testing.T) {
	var l nackLog
	var buf [nackLogSize]uint16
	for _, q := range []uint16{65533, 65534, 1, 2, 5} { // 65535, 0, 3, 4 missing, across the wrap
		l.add(q)
	}
	if got := l.missing(buf[:0], 2); !slices.Equal(got, []uint16{65535, 0, 3, 4}) {
		t.Fatalf("missing %v", got)
	}
	l.add(0) // a retransmission
	if got := l.missing(buf[:0], 2); !slices.Equal(got, []uint16{65535, 3, 4}) {
		t.Fatalf("second round: %v", got)
	}
	if got := l.missing(buf[:0], 2); len(got) != 0 {
		t.Fatalf("third round, every gap NACKed twice: %v", got)
	}
	l.add(65535)
	l.add(3)
	l.add(4)
	if l.last != 5 {
		t.Errorf("last in sequence %d after the gaps filled, want 5", l.last)
	}

	// A packet far older than the log leaves the newer packet sharing its
	// slot (104) missing.
	end := uint16(105)
	l.add(end)
	l.add(end - nackLogSize - 1)
	if got := l.missing(buf[:0], 2); len(got) != 99 || got[0] != 6 || got[98] != 104 {
		t.Errorf("after a jump of 100: %d missing (%v…)", len(got), got[:min(3, len(got))])
	}

	// A jump past the log gives the older gaps up.
	l.add(5 + 100 + 1000)
	got := l.missing(buf[:0], 2)
	if len(got) != nackLogSize-1 || got[0] != 5+100+1000-nackLogSize+1 {
		t.Errorf("after a jump of 1000: %d missing from %v, want %d from %d", len(got), got[:min(1, len(got))], nackLogSize-1, 5+100+1000-nackLogSize+1)
	}
	l.reset()
	if got := l.missing(buf[:0], 2); len(got) != 0 {
		t.Errorf("after reset: %v", got)
	}
}
