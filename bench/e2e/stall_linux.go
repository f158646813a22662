package e2e

import (
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The stall probe: a thread of the client's that sleeps probePeriod at a
// time, in the kernel, and notes each wake-up more than stallAfter late.
// Such a thread, asking for little CPU, woke at most 3 ms late here on an
// idle machine (9,543 wake-ups in 20 s), and at most 4.9-7.0 ms late in
// six 10 s windows beside the server at 100 rooms; when it wakes 10 ms
// late or more, the machine gave it no CPU for that long: the host took
// the CPU away (its other tenants) or the kernel was busy elsewhere. A
// server's ticks cannot keep their slots through that, so a run's
// overruns read beside its stalls tell the server's own lateness from the
// machine's. A process of the same machine that takes the CPU's share
// does not show: the kernel wakes the sleeper in time (beside `yes >
// /dev/null` it saw 0 or 1 stall a run while the server overran).
const (
	probePeriod = 2 * time.Millisecond
	stallAfter  = 10 * time.Millisecond
)

// stallProbe runs the probe until close.
type stallProbe struct {
	mu     sync.Mutex
	stalls []stall // in order; a run takes the ones in its window
	stop   chan struct{}
	done   chan struct{}
}

// stall is one wake-up late by more than stallAfter, at its end.
type stall struct {
	at   time.Time
	late time.Duration
}

func startStallProbe() *stallProbe {
	p := &stallProbe{stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

func (p *stallProbe) loop() {
	defer close(p.done)
	// A thread of its own, asleep in the kernel rather than on a Go timer.
	runtime.LockOSThread()
	ts := unix.NsecToTimespec(int64(probePeriod))
	for {
		select {
		case <-p.stop:
			return
		default:
		}
		t0 := time.Now()
		_ = unix.Nanosleep(&ts, nil) // interrupted early: a short period, never a stall
		t1 := time.Now()
		if late := t1.Sub(t0) - probePeriod; late > stallAfter {
			p.mu.Lock()
			p.stalls = append(p.stalls, stall{at: t1, late: late})
			p.mu.Unlock()
		}
	}
}

// between sums the stalls that ended in [from, to): how many, and the
// longest and total time the probe woke late by, and forgets the ones
// before to.
func (p *stallProbe) between(from, to time.Time) (n int, total, longest time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := 0
	for _, s := range p.stalls {
		if !s.at.Before(to) {
			p.stalls[keep] = s
			keep++
			continue
		}
		if !s.at.Before(from) {
			n++
			total += s.late
			longest = max(longest, s.late)
		}
	}
	p.stalls = p.stalls[:keep]
	return n, total, longest
}

func (p *stallProbe) close() {
	close(p.stop)
	<-p.done
}
