package capacity

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/handsup-audio/handsup/bench/internal/sim"
	"github.com/handsup-audio/handsup/engine"
)

// ListenerCost is what one listener costs per tick, and how well it was
// resolved.
//
// It is measured on two copies of the first room, each on an engine of
// its own with one worker ticked by hand on a simulated clock: one copy
// with Listeners listeners, its twin with one. The twin keeps one listener
// so that both encode the same outputs (a room encodes its shared mix only
// when someone hears it), and both play the same pre-encoded packets on the
// same simulated clock, so their decodes and encodes are the same calls on
// the same data: the codec work cancels exactly. The two are ticked in
// turn, in alternating order, once per 20 ms as the engine ticks, each
// tick timed in the CPU time of the thread that runs it, so other
// processes, other threads and the Go runtime stay out of it. The ticks
// are split into Repeats consecutive repeats; each repeat gives
//
//	(CPU of the room with Listeners − CPU of its twin) / (Listeners − 1)
//
// per tick, and the figure is the median repeat.
type ListenerCost struct {
	Listeners      int `json:"listeners"` // in the measured room; its twin has one
	Repeats        int `json:"repeats"`
	TicksPerRepeat int `json:"ticks_per_repeat"`
	// TickCPUusWith and TickCPUusWithout are the mean thread CPU time of
	// one tick of the room with Listeners listeners and of its twin.
	TickCPUusWith    float64 `json:"tick_cpu_us_with"`
	TickCPUusWithout float64 `json:"tick_cpu_us_without"`
	// NsMin, NsMedian and NsMax are the repeats' least, median and
	// greatest cost per listener per tick; null when not Resolved.
	NsMin    *float64 `json:"ns_min"`
	NsMedian *float64 `json:"ns_median"`
	NsMax    *float64 `json:"ns_max"`
	// Resolved is true when every repeat measured a positive cost and the
	// repeats agree within their median (max − min ≤ median): the
	// listeners' CPU stands clear of the ticks' noise. With few listeners
	// it may not; Note then says so.
	Resolved bool   `json:"resolved"`
	Note     string `json:"note,omitempty"`
}

// pairedRoom is one copy of the measured room.
type pairedRoom struct {
	s   session
	now atomic.Int64 // simulated time, ns since the epoch
	cpu []time.Duration
}

// pairEpoch is the paired rooms' simulated time zero; any instant does.
var pairEpoch = time.Unix(1_700_000_000, 0)

func newPairedRoom(cfg Config, streams []stream, listeners, ticks int) (*pairedRoom, error) {
	p := &pairedRoom{cpu: make([]time.Duration, 0, ticks)}
	p.s.eng = engine.New(engine.Config{Workers: 1, Now: func() time.Time {
		return pairEpoch.Add(time.Duration(p.now.Load()))
	}})
	one := cfg
	one.Rooms = 1
	if err := p.s.build(one, streams[:cfg.Speakers], listeners); err != nil {
		p.s.eng.Close()
		return nil, err
	}
	return p, nil
}

// step runs tick k, timed on the calling thread when timed, then sends
// every speaker's packet for the next tick, as the real-time run does.
func (p *pairedRoom) step(k int, timed bool) {
	p.now.Store(int64(k) * int64(engine.TickInterval))
	var t0 time.Duration
	if timed {
		t0 = threadCPUTime()
	}
	p.s.eng.Tick()
	if timed {
		p.cpu = append(p.cpu, threadCPUTime()-t0)
	}
	for i := range p.s.senders {
		p.s.senders[i].next(&p.s.buf)
	}
}

// listenerCost measures ListenerCost for cfg: warmup ticks untimed, then
// repeats·perRepeat timed pairs of ticks, one pair per 20 ms.
func listenerCost(ctx context.Context, cfg Config, streams []stream, warmup, repeats, perRepeat int) (*ListenerCost, error) {
	if cfg.Listeners == 0 {
		return nil, nil
	}
	res := &ListenerCost{Listeners: cfg.Listeners, Repeats: repeats, TicksPerRepeat: perRepeat}
	if cfg.Listeners < 2 {
		res.Note = "not resolved: it takes at least 2 listeners (the twin room keeps one)"
		return res, nil
	}
	ticks := repeats * perRepeat
	with, err := newPairedRoom(cfg, streams, cfg.Listeners, ticks)
	if err != nil {
		return nil, err
	}
	defer with.s.eng.Close()
	twin, err := newPairedRoom(cfg, streams, 1, ticks)
	if err != nil {
		return nil, err
	}
	defer twin.s.eng.Close()
	runtime.GC() // building made garbage

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for k := range warmup {
		with.step(k, false)
		twin.step(k, false)
	}
	before := [2]engine.Stats{with.s.eng.Stats(), twin.s.eng.Stats()}
	next := time.Now()
	for k := warmup; k < warmup+ticks; k++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		first, second := with, twin
		if k%2 == 1 {
			first, second = twin, with
		}
		first.step(k, true)
		second.step(k, true)
		next = next.Add(engine.TickInterval)
		time.Sleep(time.Until(next))
	}
	a := statsDelta(with.s.eng.Stats(), before[0])
	b := statsDelta(twin.s.eng.Stats(), before[1])
	if a.Decodes != b.Decodes || a.Encodes != b.Encodes {
		res.Note = fmt.Sprintf("not resolved: the twin rooms' codec work differed (%d/%d decodes, %d/%d encodes)",
			a.Decodes, b.Decodes, a.Encodes, b.Encodes)
		return res, nil
	}
	res.summarize(with.cpu, twin.cpu)
	return res, nil
}

// summarize fills in the figures from the paired ticks' CPU times: with[k]
// and without[k] are tick k of the room with Listeners and of its twin.
func (c *ListenerCost) summarize(with, without []time.Duration) {
	var sumWith, sumWithout time.Duration
	for k := range with {
		sumWith += with[k]
		sumWithout += without[k]
	}
	if n := len(with); n > 0 {
		c.TickCPUusWith = sim.Round(float64(sumWith.Nanoseconds())/float64(n)/1e3, 1)
		c.TickCPUusWithout = sim.Round(float64(sumWithout.Nanoseconds())/float64(n)/1e3, 1)
	}
	if c.Repeats == 0 || c.TicksPerRepeat == 0 || len(with) < c.Repeats*c.TicksPerRepeat {
		c.Note = "not resolved: no repeats measured"
		return
	}
	perRepeat := make([]float64, c.Repeats)
	for r := range perRepeat {
		var d time.Duration
		for k := r * c.TicksPerRepeat; k < (r+1)*c.TicksPerRepeat; k++ {
			d += with[k] - without[k]
		}
		perRepeat[r] = float64(d.Nanoseconds()) / float64(c.TicksPerRepeat) / float64(c.Listeners-1)
	}
	slices.Sort(perRepeat)
	lo, med, hi := perRepeat[0], perRepeat[len(perRepeat)/2], perRepeat[len(perRepeat)-1]
	if len(perRepeat)%2 == 0 {
		med = (perRepeat[len(perRepeat)/2-1] + med) / 2
	}
	if lo <= 0 || hi-lo > med {
		c.Note = fmt.Sprintf("not resolved: the %d listeners' CPU is within the ticks' noise (the repeats disagree by more than their median)",
			c.Listeners)
		return
	}
	lo, med, hi = sim.Round(lo, 1), sim.Round(med, 1), sim.Round(hi, 1)
	c.NsMin, c.NsMedian, c.NsMax = &lo, &med, &hi
	c.Resolved = true
}
