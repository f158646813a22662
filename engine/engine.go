package engine

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// TickInterval is the engine's period: one 20 ms Opus frame.
const TickInterval = 20 * time.Millisecond

// Config holds the engine's settings. The zero value works: every zero
// field takes the default written beside it.
type Config struct {
	Workers int // goroutines that tick rooms; default GOMAXPROCS
	// MaxCatchUp is how far behind schedule the clock may fall and still
	// run every missed tick; beyond it, it skips ahead. Default 100 ms.
	MaxCatchUp time.Duration
	// Now reads the time that stamps packet arrivals; default time.Now.
	// Tests give a fake clock and call Tick by hand.
	Now func() time.Time
	// OnTick, if set, hears how long each tick of all rooms took. It is
	// called from the clock goroutine and must be quick.
	OnTick func(elapsed time.Duration)
	// BeforeTick, if set, runs at the start of every tick, before any
	// room's: a transport's chance to hand over what has arrived
	// (rtpudp.Transport.Drain), so that packets its reader has not got to
	// yet, on a busy machine, still play in this tick. It runs on the
	// ticking goroutine, must be quick, and must not call Tick. Default
	// none.
	BeforeTick func()

	// Admission control: NewRoom and Room.Join refuse what goes past a
	// cap, so that one room or one crowd cannot degrade every room.
	MaxRooms        int // rooms at most (ErrTooManyRooms); default 0, no limit
	MaxParticipants int // participants in all rooms at most (ErrEngineFull); default 0, no limit
	// MaxTickLoad refuses new rooms and joins (ErrOverloaded) while the
	// smoothed time of a tick of every room (an average over about a
	// second of ticks, Stats.TickLoad) is above this share of
	// TickInterval, so that the engine stops growing before its ticks
	// overrun; for example 0.5 (10 ms). Default 0: off.
	MaxTickLoad float64
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.MaxCatchUp <= 0 {
		c.MaxCatchUp = 100 * time.Millisecond
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Engine hosts rooms and ticks them all on one clock.
type Engine struct {
	cfg Config
	now func() time.Time

	mu      sync.Mutex
	rooms   map[string]*Room
	closed  bool
	list    atomic.Pointer[[]*Room] // the rooms to tick, replaced on change
	retired Counters                // totals of closed rooms
	closing map[*Room]struct{}      // closed rooms not yet in retired

	tickMu  sync.Mutex // one Tick at a time
	work    chan struct{}
	current []*Room      // the rooms of the tick in progress
	next    atomic.Int64 // index in current of the next room to take
	pending sync.WaitGroup
	stop    chan struct{}
	workers sync.WaitGroup

	ticks, overruns, skipped atomic.Uint64
	members                  atomic.Int64 // participants in every room
	load                     atomic.Int64 // smoothed tick time, ns

	parts chan sendPart // a room's Send parts, for idle workers
}

// sendPart is part of a room's Send, for a worker.
type sendPart struct {
	r           *Room
	part, parts int
}

// New makes an engine and starts its worker pool. Close stops it.
func New(cfg Config) *Engine {
	cfg = cfg.withDefaults()
	e := &Engine{
		cfg:     cfg,
		now:     cfg.Now,
		rooms:   make(map[string]*Room),
		closing: make(map[*Room]struct{}),
		work:    make(chan struct{}),
		stop:    make(chan struct{}),
		parts:   make(chan sendPart),
	}
	e.list.Store(&[]*Room{})
	var none counters
	none.init()
	e.retired = none.snapshot()
	for i := 1; i < cfg.Workers; i++ { // the ticking goroutine is a worker too
		e.workers.Add(1)
		go e.worker()
	}
	return e
}

// NewRoom creates a room. Ids are 1 to 128 characters and unique
// (ErrRoomExists).
func (e *Engine) NewRoom(id string, cfg RoomConfig) (*Room, error) {
	if len(id) == 0 || len(id) > 128 {
		return nil, ErrBadID
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, ErrEngineClosed
	}
	if _, ok := e.rooms[id]; ok {
		return nil, fmt.Errorf("%w: %q", ErrRoomExists, id)
	}
	if e.cfg.MaxRooms > 0 && len(e.rooms) >= e.cfg.MaxRooms {
		return nil, fmt.Errorf("%w: %d, the most this engine holds", ErrTooManyRooms, e.cfg.MaxRooms)
	}
	if err := e.checkLoad(); err != nil {
		return nil, err
	}
	r, err := newRoom(e, id, cfg)
	if err != nil {
		return nil, err
	}
	e.rooms[id] = r
	e.publishLocked()
	return r, nil
}

// Room finds a room by id.
func (e *Engine) Room(id string) (*Room, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.rooms[id]
	return r, ok
}

// Rooms returns every room, sorted by id.
func (e *Engine) Rooms() []*Room {
	rooms := append([]*Room(nil), *e.list.Load()...)
	sort.Slice(rooms, func(i, j int) bool { return rooms[i].id < rooms[j].id })
	return rooms
}

// CloseRoom ends a room; its participants leave with ReasonRoomClosed.
func (e *Engine) CloseRoom(id string) error {
	e.mu.Lock()
	r, ok := e.rooms[id]
	if !ok {
		e.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrNoRoom, id)
	}
	delete(e.rooms, id)
	e.publishLocked()
	e.closing[r] = struct{}{} // Stats counts it until it is retired
	e.mu.Unlock()
	r.close()
	e.mu.Lock()
	e.retired.add(r.counters.snapshot())
	delete(e.closing, r)
	e.mu.Unlock()
	return nil
}

func (e *Engine) publishLocked() {
	list := make([]*Room, 0, len(e.rooms))
	for _, r := range e.rooms {
		list = append(list, r)
	}
	e.list.Store(&list)
}

// Close closes every room and stops the workers. Run returns.
func (e *Engine) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	ids := make([]string, 0, len(e.rooms))
	for id := range e.rooms {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	for _, id := range ids {
		_ = e.CloseRoom(id)
	}
	e.tickMu.Lock()
	close(e.stop)
	e.tickMu.Unlock()
	e.workers.Wait()
}

// Tick runs one 20 ms tick of every room now, spread over the workers, and
// returns when all are done. Run calls it on the real clock; tests and
// custom clocks call it directly.
func (e *Engine) Tick() {
	e.tickMu.Lock()
	defer e.tickMu.Unlock()
	select {
	case <-e.stop:
		return
	default:
	}
	start := time.Now()
	defer func() { e.observeLoad(time.Since(start)) }()
	if e.cfg.BeforeTick != nil {
		e.cfg.BeforeTick()
	}
	rooms := *e.list.Load()
	helpers := max(0, min(e.cfg.Workers, len(rooms))-1)
	e.current = rooms
	e.next.Store(0)
	e.pending.Add(helpers)
	for range helpers {
		e.work <- struct{}{}
	}
	e.drain(rooms)
	e.pending.Wait()
	e.ticks.Add(1)
}

// Skip records n ticks the clock missed (Run calls it when it falls more
// than MaxCatchUp behind; custom clocks may too). They count in
// Stats.Skipped, and every room's next tick moves its output streams'
// timestamps on over them: receivers see a gap of n frames, which they
// conceal, and stay on real time. Sequence numbers stay contiguous.
func (e *Engine) Skip(n uint64) { e.skipped.Add(n) }

// loadWeight is the weight of a tick in the smoothed tick time: about a
// second of ticks.
const loadWeight = 50

// observeLoad adds a tick's time to the smoothed tick time. Only Tick
// writes it, under tickMu.
func (e *Engine) observeLoad(d time.Duration) {
	old := e.load.Load()
	e.load.Store(old + (int64(d)-old)/loadWeight)
}

// checkLoad refuses growth while the smoothed tick time is above
// Config.MaxTickLoad.
func (e *Engine) checkLoad() error {
	if e.cfg.MaxTickLoad <= 0 {
		return nil
	}
	load, budget := time.Duration(e.load.Load()), time.Duration(e.cfg.MaxTickLoad*float64(TickInterval))
	if load > budget {
		return fmt.Errorf("%w: a tick takes %v, over %v", ErrOverloaded, load.Round(time.Microsecond), budget)
	}
	return nil
}

// admit counts a participant in, or refuses it past Config.MaxParticipants
// or Config.MaxTickLoad; release counts it out.
func (e *Engine) admit() error {
	if err := e.checkLoad(); err != nil {
		return err
	}
	if n := e.members.Add(1); e.cfg.MaxParticipants > 0 && n > int64(e.cfg.MaxParticipants) {
		e.members.Add(-1)
		return fmt.Errorf("%w: %d, the most this engine holds", ErrEngineFull, e.cfg.MaxParticipants)
	}
	return nil
}

func (e *Engine) release(n int) { e.members.Add(-int64(n)) }

// drain ticks rooms until none is left untaken.
func (e *Engine) drain(rooms []*Room) {
	for {
		i := int(e.next.Add(1)) - 1
		if i >= len(rooms) {
			return
		}
		rooms[i].runTick()
	}
}

func (e *Engine) worker() {
	defer e.workers.Done()
	for {
		select {
		case <-e.work:
			e.drain(e.current) // the channel send orders this read after Tick's write
			e.pending.Done()
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

// Run ticks every room every 20 ms until ctx ends or the engine closes.
// A tick that starts late runs at once and the schedule is kept, so the
// clock does not drift (counted in Stats.Overruns); when it falls further
// behind than MaxCatchUp it skips the missed ticks (Stats.Skipped).
func (e *Engine) Run(ctx context.Context) error {
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	next := time.Now()
	for {
		// The timer readied this goroutine as its P's next to run, which
		// inherits the P's time slice: to the runtime's monitor thread
		// the P looks as if it had run one goroutine since the last tick,
		// 20 ms, and it takes the P away in the tick's first cgo call
		// (a decode), then polls every 20 µs for a millisecond. Yielding
		// once starts a slice of its own.
		runtime.Gosched()
		start := time.Now()
		e.Tick()
		if e.cfg.OnTick != nil {
			e.cfg.OnTick(time.Since(start))
		}
		now := time.Now()
		var late bool
		var missed uint64
		next, late, missed = schedule(next, now, e.cfg.MaxCatchUp)
		if late {
			e.overruns.Add(1)
			e.Skip(missed)
			if err := e.stopped(ctx); err != nil {
				return err
			}
			continue
		}
		timer.Reset(next.Sub(now))
		select {
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		case <-e.stop:
			return ErrEngineClosed
		}
	}
}

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
		return nil
	}
}

// Stats is a snapshot of the engine's clock and totals.
type Stats struct {
	Rooms    int
	Ticks    uint64 // engine ticks run
	Overruns uint64 // ticks that started late (after their slot) and ran at once
	Skipped  uint64 // ticks skipped because the clock fell more than MaxCatchUp behind
	// TickLoad is the smoothed time of a tick of every room, over about a
	// second of ticks: what Config.MaxTickLoad compares.
	TickLoad     time.Duration
	Participants int // in every room
	Counters         // summed over all rooms, closed ones included
}

// Stats returns the engine's totals.
func (e *Engine) Stats() Stats {
	// The list, the closing rooms and the retired totals are read under
	// one lock, so that a room being closed is counted once: the totals
	// never go down.
	e.mu.Lock()
	rooms := *e.list.Load()
	counted := make([]*Room, 0, len(rooms)+len(e.closing))
	counted = append(counted, rooms...)
	for r := range e.closing {
		counted = append(counted, r)
	}
	s := Stats{
		Rooms: len(rooms), Ticks: e.ticks.Load(),
		Overruns: e.overruns.Load(), Skipped: e.skipped.Load(),
		TickLoad: time.Duration(e.load.Load()), Participants: int(e.members.Load()),
	}
	s.Counters = e.retired
	s.Counters.Loss, s.Counters.RTT = e.retired.Loss.clone(), e.retired.RTT.clone()
	s.Counters.Jitter, s.Counters.BufferDelay = e.retired.Jitter.clone(), e.retired.BufferDelay.clone()
	e.mu.Unlock()
	for _, r := range counted {
		s.Counters.add(r.counters.snapshot())
	}
	return s
}
