package engine

import (
	"sync"
	"sync/atomic"
	"time"
)

// ShedConfig is how the engine sheds load when its ticks near their 20 ms
// (Run only): every room's encoders drop to a lower Opus complexity, which
// takes about half the CPU of the default here, until the ticks have run
// well within their time again. A tick's encodes are most of its CPU in a
// server of many small rooms, so when the server gets less CPU than its
// rooms need (a busy process beside it, a host that takes the CPU away)
// the ticks keep their slots instead of running late and, further behind,
// skipping 20 ms of every room's audio: at 100 rooms beside a CPU hog,
// 1-44 of 2,000 ticks overran rather than 477-1,645 (docs/performance.md,
// "Load shedding"). Only ticks whose encodes took an eighth or more of
// their rooms' work count, to start or to hold it: a large room's tick is
// its sends, which shedding does not make cheaper. The stream goes on
// unbroken: complexity changes only how hard the encoder searches, not
// the bitstream's format. The zero value sheds with the defaults written
// beside each field.
type ShedConfig struct {
	Off bool // never shed; default false
	// Complexity is the encoders' Opus complexity while shedding, 1 to
	// 10; an encoder whose tier asks for less keeps its own. Default
	// DefaultShedComplexity (0 is treated as the default).
	Complexity int
	// Above starts shedding at once when a tick of a phase's rooms ends
	// more than this share of TickInterval after its slot (TickTime's Late
	// plus Took); at 1 the next tick runs late. Default 0.7.
	Above float64
	// Below and Hold stop shedding once, over Hold, 99% of the ticks ended
	// within Below of TickInterval after their slots and none past Above.
	// Hold doubles, up to 32 s, each time shedding starts again within a
	// minute of stopping, so a machine slow for a long while does not
	// flap. Defaults 0.5 and 2 s.
	Below float64
	Hold  time.Duration
}

// DefaultShedComplexity is ShedConfig.Complexity when it is zero: a
// 20 ms encode of speech took 68 µs here at complexity 1 against 128 µs
// at the tiers' default 5 (go test -bench EncodeSpeech ./codec).
const DefaultShedComplexity = 1

// Shedding's bounds: the longest hold, and how soon after stopping a new
// start counts as the same trouble (and doubles the hold).
const (
	maxShedHold  = 32 * time.Second
	shedRelapsed = time.Minute
)

func (c ShedConfig) withDefaults() ShedConfig {
	if c.Complexity <= 0 {
		c.Complexity = DefaultShedComplexity
	}
	c.Complexity = min(c.Complexity, 10)
	if c.Above <= 0 {
		c.Above = 0.7
	}
	if c.Below <= 0 {
		c.Below = 0.5
	}
	c.Below = min(c.Below, c.Above)
	if c.Hold <= 0 {
		c.Hold = 2 * time.Second
	}
	return c
}

// shedder decides when the engine sheds load, from how soon after their
// slots the phases' ticks end: quick to start, slow to stop.
type shedder struct {
	cfg    ShedConfig
	on     atomic.Bool
	spells atomic.Uint64 // times it started
	ticks  atomic.Uint64 // ticks of a phase's rooms run while shedding
	mu     sync.Mutex
	// While on: the current stretch of ticks that may stop it, from since,
	// n ticks of which over ended past Below.
	since   time.Time
	n, over int
	hold    time.Duration
	stopped time.Time // when it last stopped; zero if never
}

// shedMinEncodeShare is the share of its rooms' work a tick's encodes
// must take for shedding to heed the tick: shedding halves the encodes'
// cost, so below an eighth it would take 6-7% off the tick. A large
// room's tick is its sends (at 6,400 listeners its 4 encodes are about
// 0.6 ms of a tick of up to 17 ms here): however near its 20 ms it runs,
// it sheds nothing, and its listeners keep the tiers' quality.
const shedMinEncodeShare = 0.125

// observe takes a tick that ended used after its slot, at now, its
// encodes encodeShare of its rooms' work (the phases' clocks call it,
// each after its tick): it starts or stops shedding. A tick whose encodes
// were under shedMinEncodeShare counts as one on time.
func (s *shedder) observe(used time.Duration, encodeShare float64, now time.Time) {
	if s.cfg.Off {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	share := float64(used) / float64(TickInterval)
	if encodeShare < shedMinEncodeShare {
		share = 0 // shedding would not bring it back
	}
	if !s.on.Load() {
		if share <= s.cfg.Above {
			return
		}
		if !s.stopped.IsZero() && now.Sub(s.stopped) < shedRelapsed {
			s.hold = min(2*s.hold, maxShedHold)
		} else {
			s.hold = s.cfg.Hold
		}
		s.on.Store(true)
		s.spells.Add(1)
		s.since, s.n, s.over = now, 0, 0
		return
	}
	s.ticks.Add(1)
	if share > s.cfg.Above { // still in trouble: the stretch starts again
		s.since, s.n, s.over = now, 0, 0
		return
	}
	s.n++
	if share > s.cfg.Below {
		s.over++
	}
	if now.Sub(s.since) < s.hold {
		return
	}
	if 100*s.over > s.n { // past Below more than 1% of the time
		s.since, s.n, s.over = now, 0, 0
		return
	}
	s.on.Store(false)
	s.stopped = now
}

// complexity is the complexity every encoder is held to now: the
// shedding one, or -1 when the engine is not shedding.
func (s *shedder) complexity() int {
	if !s.on.Load() {
		return -1
	}
	return s.cfg.Complexity
}
