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

	// flush sends what the room's listeners queued in the tick (the room's
	// AfterTick); nil when their sinks send nothing. sent counts the
	// datagrams it has sent so far.
	flush func()
	sent  func() uint64
	// flushCPU and flushed are each timed tick's flush: its thread CPU
	// time (within cpu) and the datagrams it sent; 0 without flush.
	flushCPU []time.Duration
	flushed  []uint64
	timed    bool // the tick running now is timed
	// pending is a timed tick's flush, left for flushPending: the
	// round's flushes run after every room's tick (tickPaired).
	pending bool

	countAllocs bool             // allocStep is counting
	ms          runtime.MemStats // reused: ReadMemStats's argument must not be allocated per call
	m0, mallocs uint64
}

// pairEpoch is the paired rooms' simulated time zero; any instant does.
var pairEpoch = time.Unix(1_700_000_000, 0)

// listeners says how a paired room's listeners join: join gives listener
// i's config with its Sink (nil join: one counting sink for all), flush
// and sent are pairedRoom's.
type listeners struct {
	join  func(i int) (engine.ParticipantConfig, error)
	flush func()
	sent  func() uint64
}

func newPairedRoom(cfg Config, streams []sim.Stream, n, ticks int, l listeners) (*pairedRoom, error) {
	p := &pairedRoom{
		flush: l.flush, sent: l.sent,
		cpu: make([]time.Duration, 0, ticks), flushCPU: make([]time.Duration, 0, ticks), flushed: make([]uint64, 0, ticks),
	}
	p.s.eng = engine.New(engine.Config{Workers: 1, Now: func() time.Time {
		return pairEpoch.Add(time.Duration(p.now.Load()))
	}})
	one := cfg
	one.Rooms = 1
	if err := p.s.build(one, streams[:cfg.Speakers], n, l.join, p.afterTick); err != nil {
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
	p.timed = timed
	if timed {
		t0 = threadCPUTime()
	}
	p.s.eng.Tick()
	if timed {
		p.cpu = append(p.cpu, threadCPUTime()-t0)
		if p.flush == nil {
			p.flushCPU = append(p.flushCPU, 0)
			p.flushed = append(p.flushed, 0)
		}
	}
	p.timed = false
	for i := range p.s.senders {
		p.s.senders[i].next(&p.s.buf)
	}
}

// afterTick is the room's AfterTick: it ends allocStep's count, then
// flushes, timed apart when the tick is timed.
func (p *pairedRoom) afterTick() {
	if p.countAllocs {
		runtime.ReadMemStats(&p.ms)
		p.mallocs = p.ms.Mallocs - p.m0
	}
	if p.flush == nil {
		return
	}
	if !p.timed {
		p.flush()
		return
	}
	p.pending = true
}

// flushPending runs a timed tick's flush, timed apart, and counts its CPU
// time in the tick's as well (cpu holds the whole tick, flush included).
// Flushing after every room's tick of the round keeps the clients on this
// machine, whom what a flush delivers wakes up, from running beside the
// ticks being timed and taking their caches; on a real server they are
// elsewhere.
func (p *pairedRoom) flushPending() {
	if !p.pending {
		return
	}
	p.pending = false
	before := p.sent()
	t0 := threadCPUTime()
	p.flush()
	d := threadCPUTime() - t0
	p.flushCPU = append(p.flushCPU, d)
	p.flushed = append(p.flushed, p.sent()-before)
	p.cpu[len(p.cpu)-1] += d
}

// allocStep runs tick k untimed and returns the Go heap allocations
// (runtime.MemStats.Mallocs, process-wide) from its start to its flush.
func (p *pairedRoom) allocStep(k int) uint64 {
	runtime.ReadMemStats(&p.ms)
	p.m0 = p.ms.Mallocs
	p.countAllocs = true
	p.step(k, false)
	p.countAllocs = false
	return p.mallocs
}

// close stops the room's engine.
func (p *pairedRoom) close() { p.s.eng.Close() }

// tickPaired runs ticks from..from+n−1 of rooms in real time: each 20 ms
// every room's tick k, by each, in the order of row k of a Williams
// design (balancedOrder), so that no room always runs first or always
// after the same room: what one room's tick leaves in the caches weighs
// on every room alike.
func tickPaired(ctx context.Context, rooms []*pairedRoom, from, n int, each func(p *pairedRoom, k int)) error {
	order := make([]int, len(rooms))
	next := time.Now()
	for k := from; k < from+n; k++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		balancedOrder(k, order)
		for _, j := range order {
			each(rooms[j], k)
		}
		for _, j := range order {
			rooms[j].flushPending()
		}
		next = next.Add(engine.TickInterval)
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		} else {
			next = time.Now() // behind: keep the spacing, not the schedule
		}
	}
	return nil
}

// balancedOrder puts row k of a Williams design for len(order) rooms in
// order: for an even count n, over any n consecutive rows each room runs
// first once and right after each other room once (0, 1, n−1, 2, n−2, …
// shifted by k). For an odd count it alternates 0..n−1 and its reverse.
// Two rooms alternate, as ListenerCost always has.
func balancedOrder(k int, order []int) {
	n := len(order)
	if n%2 == 1 {
		for j := range order {
			order[j] = j
			if k%2 == 1 {
				order[j] = n - 1 - j
			}
		}
		return
	}
	for j := range order {
		x := (j + 1) / 2
		if j%2 == 0 && j > 0 {
			x = n - j/2
		}
		order[j] = (x + k) % n
	}
}

func untimed(p *pairedRoom, k int) { p.step(k, false) }
func timed(p *pairedRoom, k int)   { p.step(k, true) }

// codecMismatch says why twin rooms' ticks do not compare: their codec
// work differed since before; "" when it did not.
func codecMismatch(with, twin *pairedRoom, before [2]engine.Stats) string {
	a := statsDelta(with.s.eng.Stats(), before[0])
	b := statsDelta(twin.s.eng.Stats(), before[1])
	if a.Decodes != b.Decodes || a.Encodes != b.Encodes {
		return fmt.Sprintf("not resolved: the twin rooms' codec work differed (%d/%d decodes, %d/%d encodes)",
			a.Decodes, b.Decodes, a.Encodes, b.Encodes)
	}
	return ""
}

// listenerCost measures ListenerCost for cfg: warmup ticks untimed, then
// repeats·perRepeat timed pairs of ticks, one pair per 20 ms.
func listenerCost(ctx context.Context, cfg Config, streams []sim.Stream, warmup, repeats, perRepeat int) (*ListenerCost, error) {
	if cfg.Listeners == 0 {
		return nil, nil
	}
	res := &ListenerCost{Listeners: cfg.Listeners, Repeats: repeats, TicksPerRepeat: perRepeat}
	if cfg.Listeners < 2 {
		res.Note = "not resolved: it takes at least 2 listeners (the twin room keeps one)"
		return res, nil
	}
	ticks := repeats * perRepeat
	with, err := newPairedRoom(cfg, streams, cfg.Listeners, ticks, listeners{})
	if err != nil {
		return nil, err
	}
	defer with.close()
	twin, err := newPairedRoom(cfg, streams, 1, ticks, listeners{})
	if err != nil {
		return nil, err
	}
	defer twin.close()
	runtime.GC() // building made garbage

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rooms := []*pairedRoom{with, twin}
	if err := tickPaired(ctx, rooms, 0, warmup, untimed); err != nil {
		return nil, err
	}
	before := [2]engine.Stats{with.s.eng.Stats(), twin.s.eng.Stats()}
	if err := tickPaired(ctx, rooms, warmup, ticks, timed); err != nil {
		return nil, err
	}
	if res.Note = codecMismatch(with, twin, before); res.Note != "" {
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
	lo, med, hi, ok := spread(perRepeat(with, without, c.Repeats, c.TicksPerRepeat, c.Listeners-1))
	if !ok {
		c.Note = fmt.Sprintf("not resolved: the %d listeners' CPU is within the ticks' noise (the repeats disagree by more than their median)",
			c.Listeners)
		return
	}
	c.NsMin, c.NsMedian, c.NsMax = &lo, &med, &hi
	c.Resolved = true
}

// perRepeat is, for each of repeats consecutive runs of per ticks, the
// mean of with[k] − without[k] over the run divided by n, in ns.
func perRepeat(with, without []time.Duration, repeats, per, n int) []float64 {
	v := make([]float64, repeats)
	for r := range v {
		var d time.Duration
		for k := r * per; k < (r+1)*per; k++ {
			d += with[k] - without[k]
		}
		v[r] = float64(d.Nanoseconds()) / float64(per) / float64(n)
	}
	return v
}

// spread is the least, median and greatest of v, rounded to 0.1, and
// whether they resolve a cost: all positive, and max − min ≤ median.
func spread(v []float64) (lo, med, hi float64, resolved bool) {
	if len(v) == 0 {
		return 0, 0, 0, false
	}
	v = slices.Clone(v)
	slices.Sort(v)
	lo, med, hi = v[0], v[len(v)/2], v[len(v)-1]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + med) / 2
	}
	resolved = lo > 0 && hi-lo <= med
	return sim.Round(lo, 1), sim.Round(med, 1), sim.Round(hi, 1), resolved
}
