package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/handsup-audio/handsup/bench/capacity"
)

// progressEvery is how often the progress line is printed, once the run
// has gone on for progressAfter: a short run prints nothing.
const (
	progressEvery = 2 * time.Second
	progressAfter = 3 * time.Second
)

// progress prints, on stderr, where a capacity run (or a sweep of them)
// is: the run, the phase, the time elapsed and an estimate of the time
// left. capacity calls update from its goroutines; a ticker prints.
type progress struct {
	w       io.Writer
	tty     bool // overwrite one line instead of printing one per update
	start   time.Time
	configs []capacity.Config

	mu         sync.Mutex
	run        int // index in configs
	phase      string
	phaseStart time.Time
	done, tot  int // ticks of the real-time run
	printed    bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// startProgress starts printing progress for the runs of configs; call
// finish when they are done.
func startProgress(w io.Writer, configs []capacity.Config) *progress {
	p := &progress{w: w, start: time.Now(), configs: configs, stop: make(chan struct{})}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(progressEvery)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case now := <-t.C:
				if now.Sub(p.start) >= progressAfter {
					p.print(now)
				}
			}
		}
	}()
	return p
}

// forRun returns the Progress callback of run i.
func (p *progress) forRun(i int) func(capacity.Progress) {
	return func(u capacity.Progress) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if u.Phase != p.phase || i != p.run {
			p.run, p.phase, p.phaseStart = i, u.Phase, time.Now()
		}
		p.done, p.tot = u.Done, u.Total
	}
}

// finish stops the printer and ends the line it was overwriting.
func (p *progress) finish() {
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.printed && p.tty {
		fmt.Fprintln(p.w)
	}
}

func (p *progress) print(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.phase == "" {
		return
	}
	left := p.leftLocked(now)
	run := ""
	if len(p.configs) > 1 {
		run = fmt.Sprintf("run %d/%d (%d listeners), ", p.run+1, len(p.configs), p.configs[p.run].Listeners)
	}
	phase := p.phase
	if p.tot > 0 {
		phase += fmt.Sprintf(" %d%%", 100*p.done/p.tot)
	}
	line := fmt.Sprintf("handsup-bench: %s%s, %s elapsed, about %s left",
		run, phase, now.Sub(p.start).Round(time.Second), left.Round(time.Second))
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.printed = true
}

// leftLocked estimates the time left: the rest of the current phase, the
// phases after it, and the runs after this one.
func (p *progress) leftLocked(now time.Time) time.Duration {
	var left time.Duration
	after := false
	for _, ph := range phases(p.configs[p.run]) {
		switch {
		case ph.name == p.phase && p.phase == capacity.PhaseRun && p.tot > 0:
			left += time.Duration(p.tot-p.done) * 20 * time.Millisecond
			after = true
		case ph.name == p.phase:
			left += max(0, ph.est-now.Sub(p.phaseStart))
			after = true
		case after:
			left += ph.est
		}
	}
	for _, c := range p.configs[p.run+1:] {
		left += estimate(c)
	}
	return left
}

type phaseEstimate struct {
	name string
	est  time.Duration
}

// phases estimates how long each phase of a capacity run takes on a
// 2-core machine (measured with handsup-bench here: a 30 s run took
// 67 s, of which 13 s of listener cost and 9 s of transports at 200).
func phases(c capacity.Config) []phaseEstimate {
	speakers := time.Duration(c.Rooms * c.Speakers)
	out := []phaseEstimate{
		{capacity.PhaseEncode, 200*time.Millisecond + speakers*60*time.Millisecond},
		{capacity.PhaseRun, time.Second + c.Duration},
	}
	if c.Listeners > 0 {
		// 50 warm-up and 7 repeats of tick pairs, one pair per 20 ms
		// (capacity's tuning), after building the twin rooms.
		per := max(25, int(c.Duration/(20*time.Millisecond))/21)
		out = append(out, phaseEstimate{capacity.PhaseListenerCost, 2*time.Second + time.Duration(50+7*per)*20*time.Millisecond})
	}
	if c.TransportListeners > 0 {
		out = append(out, phaseEstimate{capacity.PhaseTransports, 5*time.Second + time.Duration(c.TransportListeners)*20*time.Millisecond})
	}
	return append(out, phaseEstimate{capacity.PhaseCodecFloor, 2 * time.Second})
}

// estimate is a whole run's estimated time.
func estimate(c capacity.Config) time.Duration {
	var d time.Duration
	for _, ph := range phases(c) {
		d += ph.est
	}
	return d
}
