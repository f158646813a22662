package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handsup-audio/handsup/bench/capacity"
)

// progressEvery is how often the progress line is printed, once the run
// has gone on for progressAfter: a short run prints nothing.
const (
	progressEvery = 2 * time.Second
	progressAfter = 3 * time.Second
)

// printer prints a progress line on w every progressEvery, from
// progressAfter on, overwriting it on a terminal.
type printer struct {
	w     io.Writer
	tty   bool
	start time.Time
	line  func(now time.Time) string // "" prints nothing

	mu      sync.Mutex
	printed bool
	stop    chan struct{}
	wg      sync.WaitGroup
}

func startPrinter(w io.Writer, start time.Time, line func(now time.Time) string) *printer {
	p := &printer{w: w, start: start, line: line, stop: make(chan struct{})}
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

func (p *printer) print(now time.Time) {
	line := p.line(now)
	if line == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
	} else {
		fmt.Fprintln(p.w, line)
	}
	p.printed = true
}

// finish stops the printer and ends the line it was overwriting.
func (p *printer) finish() {
	close(p.stop)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.printed && p.tty {
		fmt.Fprintln(p.w)
	}
}

// progress follows capacity runs (a sweep of them): the run, the phase,
// the time elapsed and an estimate of the time left. capacity calls the
// callbacks of forRun from its goroutines.
type progress struct {
	*printer
	configs []capacity.Config

	mu         sync.Mutex
	run        int // index in configs
	phase      string
	phaseStart time.Time
	done, tot  int // ticks of the real-time run
}

// startProgress starts printing progress for the runs of configs; call
// finish when they are done.
func startProgress(w io.Writer, configs []capacity.Config) *progress {
	p := &progress{configs: configs}
	p.printer = startPrinter(w, time.Now(), p.line)
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

func (p *progress) line(now time.Time) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.phase == "" {
		return ""
	}
	run := ""
	if len(p.configs) > 1 {
		run = fmt.Sprintf("run %d/%d (%d listeners), ", p.run+1, len(p.configs), p.configs[p.run].Listeners)
	}
	phase := p.phase
	if p.tot > 0 {
		phase += fmt.Sprintf(" %d%%", 100*p.done/p.tot)
	}
	return fmt.Sprintf("handsup-bench: %s%s, %s elapsed, about %s left",
		run, phase, now.Sub(p.start).Round(time.Second), p.leftLocked(now).Round(time.Second))
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

// simProgress follows quality runs on a simulated clock: the share of
// their simulated time done and the time left to simulate at the rate so
// far; then that the audio is being compared (for the 60 s room scenario
// about as long again as the simulation).
type simProgress struct {
	*printer
	total time.Duration
	done  atomic.Int64 // simulated ns
}

func startSimProgress(w io.Writer, total time.Duration) *simProgress {
	p := &simProgress{total: total}
	p.printer = startPrinter(w, time.Now(), p.line)
	return p
}

// add is the scenarios' Progress callback.
func (p *simProgress) add(simulated time.Duration) { p.done.Add(int64(simulated)) }

func (p *simProgress) line(now time.Time) string {
	done := time.Duration(p.done.Load())
	if done <= 0 || p.total <= 0 {
		return ""
	}
	elapsed := now.Sub(p.start)
	if done >= p.total {
		return fmt.Sprintf("handsup-bench: simulated %s; comparing the listeners' audio with the clean runs, %s elapsed",
			p.total.Round(time.Second), elapsed.Round(time.Second))
	}
	f := float64(done) / float64(p.total)
	left := time.Duration(float64(elapsed) * (1 - f) / f)
	return fmt.Sprintf("handsup-bench: simulated %s of %s (%d%%), %s elapsed, about %s left to simulate, then the comparison",
		done.Round(time.Second), p.total.Round(time.Second), int(100*f), elapsed.Round(time.Second), left.Round(time.Second))
}
