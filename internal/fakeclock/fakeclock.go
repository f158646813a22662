package fakeclock

import (
	"sync"
	"time"
)

// Clock is a fake clock. Its zero value reads the zero time.Time until Set
// or Advance moves it; New starts one at a given time.
type Clock struct {
	mu  sync.RWMutex
	now time.Time
}

// New returns a clock reading start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time. Its method value (c.Now) is a
// func() time.Time, to pass where code takes its clock as one.
func (c *Clock) Now() time.Time {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.now
}

// Advance moves the clock on by d (back, if d is negative) and returns
// the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set puts the clock at t, forwards or back.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
