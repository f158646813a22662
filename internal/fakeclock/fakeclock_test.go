package fakeclock_test

import (
	"sync"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/internal/fakeclock"
)

func TestClock(t *testing.T) {
	var zero fakeclock.Clock
	if !zero.Now().IsZero() {
		t.Errorf("zero Clock reads %v, want the zero time", zero.Now())
	}
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	c := fakeclock.New(start)
	if got := c.Now(); !got.Equal(start) {
		t.Errorf("New(%v).Now() = %v", start, got)
	}
	if got := c.Now(); !got.Equal(start) {
		t.Errorf("the clock moved by itself: %v", got)
	}
	if got := c.Advance(20 * time.Millisecond); !got.Equal(start.Add(20*time.Millisecond)) || !c.Now().Equal(got) {
		t.Errorf("Advance(20ms) = %v, Now %v; want %v", got, c.Now(), start.Add(20*time.Millisecond))
	}
	if got := c.Advance(-time.Second); !got.Equal(start.Add(-980 * time.Millisecond)) {
		t.Errorf("Advance(-1s) = %v", got)
	}
	c.Set(start)
	if got := c.Now(); got != start {
		t.Errorf("after Set(%v), Now() = %v", start, got)
	}
}

// TestConcurrent reads the clock from several goroutines while it moves:
// run with -race. Each reader sees time only go forwards.
func TestConcurrent(t *testing.T) {
	c := fakeclock.New(time.Unix(0, 0))
	const steps = 1000
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last time.Time
			for range steps {
				now := c.Now()
				if now.Before(last) {
					t.Errorf("time went back from %v to %v", last, now)
					return
				}
				last = now
			}
		}()
	}
	for range steps {
		c.Advance(time.Millisecond)
	}
	wg.Wait()
	if got, want := c.Now(), time.Unix(0, 0).Add(steps*time.Millisecond); !got.Equal(want) {
		t.Errorf("after %d steps of 1 ms: %v, want %v", steps, got, want)
	}
}
