package engine

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultPhases is Config.Phases when it is zero, and MaxPhases its
// bound (their ticks 2 ms apart).
const (
	DefaultPhases = 4
	MaxPhases     = 10
)

// TickTime is how one tick of a phase's rooms went (Config.OnTick).
type TickTime struct {
	Phase int           // the phase, 0 to Config.Phases-1
	Slot  time.Time     // when it was due, on the phase's 20 ms grid
	Late  time.Duration // how long after Slot it started; 0 on time
	Took  time.Duration // how long its rooms took to tick
}

// phase is one of Run's clocks: it ticks its rooms every 20 ms, its grid
// TickInterval/Phases after the previous phase's.
type phase struct {
	index   int
	mu      sync.Mutex // one tick of its rooms at a time
	rooms   atomic.Pointer[[]*Room]
	run     tickRun
	skipped atomic.Uint64 // ticks its clock skipped: its rooms' streams move on over them
	load    atomic.Int64  // smoothed tick time, ns
	// wake rouses the clock of a phase without rooms, which sleeps
	// rather than waking every 20 ms to find none: a room joined it
	// (publishLocked). Buffered, one token.
	wake    chan struct{}
	wakeUps atomic.Uint64 // times its clock woke to tick, for tests
}

// tickRun is one tick of a list of rooms: the goroutine that ticks them
// and the workers that help take its rooms one at a time, oldest run
// first (Engine.queue).
type tickRun struct {
	rooms []*Room
	due   time.Time     // when the tick's frames are due, on the engine's clock (Room.runTick)
	next  int           // index in rooms of the next room to take, under Engine.queueMu
	left  atomic.Int64  // rooms not yet ticked
	done  chan struct{} // the goroutine that ticks the last room says so
	// work and encodes sum, in nanoseconds, how long the rooms' ticks
	// took and their encodes within them: what shedding load can relieve.
	work, encodes atomic.Int64
}

// quietestPhaseLocked is the phase a new room joins: the one with the
// fewest rooms, the first of those. Under Engine.mu the phases' lists are
// current: every change publishes them (publishLocked).
func (e *Engine) quietestPhaseLocked() *phase {
	q := e.phases[0]
	for _, ph := range e.phases[1:] {
		if len(*ph.rooms.Load()) < len(*q.rooms.Load()) {
			q = ph
		}
	}
	return q
}

func (e *Engine) lockPhases() {
	for _, ph := range e.phases {
		ph.mu.Lock()
	}
}

func (e *Engine) unlockPhases() {
	for _, ph := range e.phases {
		ph.mu.Unlock()
	}
}

// skippedTotal is every skipped tick: Skip's and the phases' own.
func (e *Engine) skippedTotal() uint64 {
	n := e.skipped.Load()
	for _, ph := range e.phases {
		n += ph.skipped.Load()
	}
	return n
}

// Tick runs one 20 ms tick of every room now, spread over the workers, and
// returns when all are done. Tests and custom clocks call it; Run ticks
// the phases on the real clock instead. It waits for a tick of Run's in
// progress.
func (e *Engine) Tick() {
	e.lockPhases()
	defer e.unlockPhases()
	select {
	case <-e.stop:
		return
	default:
	}
	start := time.Now()
	e.beforeTick()
	e.runRooms(&e.all, *e.list.Load(), e.now())
	e.ticks.Add(1)
	observeLoad(&e.load, time.Since(start))
}

// tickPhase runs ph's tick, which starts late past its slot, and says
// how long it took and what share of its rooms' work their encodes were.
// A phase without rooms does nothing (and its clock then sleeps until a
// room joins), bar the first, which ticks with or without rooms:
// Stats.Ticks counts 20 ms rounds, and BeforeTick runs at least every
// 20 ms.
func (e *Engine) tickPhase(ph *phase, late time.Duration) (took time.Duration, encodeShare float64, ran bool) {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	select {
	case <-e.stop:
		return 0, 0, false
	default:
	}
	rooms := *ph.rooms.Load()
	if ph.index == 0 {
		e.ticks.Add(1)
	} else if len(rooms) == 0 {
		return 0, 0, false
	}
	start := time.Now()
	// The rooms' frames are due at the slot, however late the tick runs
	// (on the engine's clock, which stamps the arrivals).
	due := e.now().Add(-late)
	e.beforeTick()
	e.runRooms(&ph.run, rooms, due)
	took = time.Since(start)
	observeLoad(&ph.load, took)
	return took, ph.run.encodeShare(), true
}

func (e *Engine) beforeTick() {
	if e.cfg.BeforeTick == nil {
		return
	}
	e.beforeMu.Lock()
	defer e.beforeMu.Unlock()
	e.cfg.BeforeTick()
}

// runRooms ticks rooms, on this goroutine and on the workers, and returns
// when every one is done. Whoever ticks holds one of the Workers slots, so
// that the phases' clocks and the workers together never tick more than
// Workers rooms at once: more goroutines in cgo calls than that would take
// procs.SpareProcessor's spare P, and two phases' ticks that meet take
// turns (the older first) rather than slowing each other. A worker that
// finishes one phase's rooms goes on to the next's.
func (e *Engine) runRooms(t *tickRun, rooms []*Room, due time.Time) {
	if len(rooms) == 0 {
		return
	}
	t.rooms, t.next, t.due = rooms, 0, due
	t.left.Store(int64(len(rooms)))
	t.work.Store(0)
	t.encodes.Store(0)
	e.queueMu.Lock()
	e.queue = append(e.queue, t)
	e.queueMu.Unlock()
	for range min(e.cfg.Workers, len(rooms)) - 1 {
		select {
		case e.work <- struct{}{}:
		default: // as many wake-ups waiting as workers: enough
		}
	}
	e.slots <- struct{}{}
	for _, r := e.take(t); r != nil; _, r = e.take(t) {
		t.tick(r)
	}
	<-e.slots
	<-t.done
}

// take gives the next room to tick and its run: run only's, or with only
// nil the oldest run's that has rooms untaken; a nil room when there is
// none. A run whose rooms are all taken leaves the queue.
func (e *Engine) take(only *tickRun) (*tickRun, *Room) {
	e.queueMu.Lock()
	defer e.queueMu.Unlock()
	for i := 0; i < len(e.queue); {
		t := e.queue[i]
		if t.next == len(t.rooms) {
			e.queue = slices.Delete(e.queue, i, i+1)
			continue
		}
		if only == nil || t == only {
			t.next++
			return t, t.rooms[t.next-1]
		}
		i++
	}
	return nil, nil
}

// help ticks queued rooms, of any run, until none is left untaken.
func (e *Engine) help() {
	e.slots <- struct{}{}
	defer func() { <-e.slots }()
	for t, r := e.take(nil); r != nil; t, r = e.take(nil) {
		t.tick(r)
	}
}

// tick ticks r, one of t's rooms, and adds what its tick took to t's sums.
func (t *tickRun) tick(r *Room) {
	start := time.Now()
	encodes := r.runTick(t.due)
	t.work.Add(int64(time.Since(start)))
	t.encodes.Add(int64(encodes))
	t.finish()
}

// encodeShare is the share of its rooms' work that t's encodes took.
func (t *tickRun) encodeShare() float64 {
	work := t.work.Load()
	if work <= 0 {
		return 0
	}
	return float64(t.encodes.Load()) / float64(work)
}

// finish counts one of t's rooms ticked.
func (t *tickRun) finish() {
	if t.left.Add(-1) == 0 {
		t.done <- struct{}{}
	}
}

func (e *Engine) worker() {
	defer e.workers.Done()
	for {
		select {
		case <-e.work:
			e.help()
		case p := <-e.parts:
			p.r.cfg.Send(p.part, p.parts)
			p.r.sendParts.Done()
		case <-e.stop:
			return
		}
	}
}

// split runs r's Send in parts: each part a worker waiting for work
// takes (a worker busy with another room takes none), the rest on the
// calling goroutine; it returns when every part is done.
func (e *Engine) split(r *Room, parts int) {
	for i := 1; i < parts; i++ {
		r.sendParts.Add(1)
		select {
		case e.parts <- sendPart{r, i, parts}:
		default:
			r.sendParts.Done()
			r.cfg.Send(i, parts)
		}
	}
	r.cfg.Send(0, parts)
	r.sendParts.Wait()
}

// Run ticks every room every 20 ms until ctx ends or the engine closes:
// each phase's rooms on a clock of its own, the phases' grids
// TickInterval/Phases apart. A phase's tick that starts late (its
// previous tick ran past the slot) runs at once and its grid is kept, so
// its clock does not drift (Stats.Overruns); when it falls further behind
// than MaxCatchUp it skips the missed ticks (Stats.Skipped), for its rooms
// alone.
func (e *Engine) Run(ctx context.Context) error {
	start := time.Now()
	var wg sync.WaitGroup
	for _, ph := range e.phases[1:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = e.runPhase(ctx, ph, start.Add(time.Duration(ph.index)*TickInterval/time.Duration(len(e.phases))))
		}()
	}
	err := e.runPhase(ctx, e.phases[0], start)
	wg.Wait() // they end on the same ctx or Close
	return err
}

// runPhase ticks ph's rooms on a 20 ms grid from slot until ctx ends or
// the engine closes.
func (e *Engine) runPhase(ctx context.Context, ph *phase, slot time.Time) error {
	timer := time.NewTimer(time.Until(slot))
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-e.stop:
			return ErrEngineClosed
		}
		for {
			ph.wakeUps.Add(1)
			// The timer readied this goroutine as its P's next to run,
			// which inherits the P's time slice: to the runtime's monitor
			// thread the P looks as if it had run one goroutine since the
			// last tick, 20 ms, and it takes the P away in the tick's first
			// cgo call (a decode), then polls every 20 µs for a
			// millisecond. Yielding once starts a slice of its own.
			runtime.Gosched()
			lateness := max(0, time.Since(slot))
			took, encodeShare, ran := e.tickPhase(ph, lateness)
			if ran {
				e.shed.observe(lateness+took, encodeShare, slot.Add(lateness+took))
				if e.cfg.OnTick != nil {
					e.cfg.OnTick(TickTime{Phase: ph.index, Slot: slot, Late: lateness, Took: took})
				}
			}
			now := time.Now()
			if !ran && ph.index != 0 {
				// No rooms: sleep until one joins, then tick on the grid.
				// Three idle phases of four woke 150 times a second, and
				// each wake-up cost the runtime a few threads' wake-ups.
				if err := e.idle(ctx, ph); err != nil {
					return err
				}
				now = time.Now()
				slot = onGrid(slot, now)
				timer.Reset(slot.Sub(now))
				break
			}
			next, late, missed := schedule(slot, now, e.cfg.MaxCatchUp)
			slot = next
			if !late {
				timer.Reset(next.Sub(now))
				break
			}
			if ran { // a phase without rooms loses nothing
				e.overruns.Add(1)
				ph.skipped.Add(missed)
			}
			if err := e.stopped(ctx); err != nil {
				return err
			}
		}
	}
}

// idle waits until a room joins ph, ctx ends or the engine closes.
func (e *Engine) idle(ctx context.Context, ph *phase) error {
	select {
	case <-ph.wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-e.stop:
		return ErrEngineClosed
	}
}

// onGrid is the first slot at or after now on slot's 20 ms grid.
func onGrid(slot, now time.Time) time.Time {
	if behind := now.Sub(slot); behind > 0 {
		slot = slot.Add((behind + TickInterval - 1) / TickInterval * TickInterval)
	}
	return slot
}

// Skip records n ticks the clock missed, for every room (custom clocks
// may call it; Run skips a phase's alone). They count in Stats.Skipped,
// and every room's next tick moves its output streams' timestamps on over
// them: receivers see a gap of n frames, which they conceal, and stay on
// real time. Sequence numbers stay contiguous.
func (e *Engine) Skip(n uint64) { e.skipped.Add(n) }

// schedule finds when the tick after the one due at prev is due. A tick
// already due (late) runs at once, keeping the 20 ms grid so the clock does
// not drift; when now is more than maxCatchUp past the grid, the missed
// ticks are skipped and counted.
func schedule(prev, now time.Time, maxCatchUp time.Duration) (next time.Time, late bool, skipped uint64) {
	next = prev.Add(TickInterval)
	behind := now.Sub(next)
	if behind <= 0 {
		return next, false, 0
	}
	if behind > maxCatchUp {
		n := behind / TickInterval
		next = next.Add(n * TickInterval)
		skipped = uint64(n)
	}
	return next, true, skipped
}

func (e *Engine) stopped(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-e.stop:
		return ErrEngineClosed
	default:
	}
	return nil
}
