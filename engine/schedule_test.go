package engine

import (
	"testing"
	"time"
)

func TestSchedule(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	tests := []struct {
		name        string
		now         time.Duration // after t0, when the tick due at t0 finished
		wantNext    time.Duration
		wantLate    bool
		wantSkipped uint64
	}{
		{"on time", 5 * ms, 20 * ms, false, 0},
		{"exactly at the next slot", 20 * ms, 20 * ms, false, 0},
		{"late: caught up on the grid", 27 * ms, 20 * ms, true, 0},
		{"late by less than the catch-up limit", 110 * ms, 20 * ms, true, 0},
		{"far behind: skip to the current slot", 185 * ms, 180 * ms, true, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next, late, skipped := schedule(t0, t0.Add(tc.now), 100*ms)
			if got := next.Sub(t0); got != tc.wantNext || late != tc.wantLate || skipped != tc.wantSkipped {
				t.Fatalf("schedule = (+%v, late %v, skipped %d), want (+%v, %v, %d)",
					got, late, skipped, tc.wantNext, tc.wantLate, tc.wantSkipped)
			}
		})
	}
}

// A clock that keeps finishing ticks 1 ms late stays on the 20 ms grid: no drift.
func TestScheduleNoDrift(t *testing.T) {
	t0 := time.Unix(1000, 0)
	next := t0
	for i := 0; i < 1000; i++ {
		next, _, _ = schedule(next, next.Add(TickInterval+time.Millisecond), 100*time.Millisecond)
	}
	if want := t0.Add(1000 * TickInterval); !next.Equal(want) {
		t.Fatalf("after 1000 ticks the schedule is at %v, want %v", next.Sub(t0), want.Sub(t0))
	}
}
