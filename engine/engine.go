package engine

import (
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
	// Phases spreads the rooms over this many clocks, TickInterval/Phases
	// apart (Run), so that many rooms' decodes, encodes and sends do not
	// all land in one burst at the start of each 20 ms. Each room ticks
	// every 20 ms on its phase's clock; a new room goes to the phase with
	// the fewest. Default 4 (DefaultPhases); at most 10 (MaxPhases); 1
	// ticks every room at once. At 100 rooms on two cores four phases
	// overran no tick in 13 runs of 17 where one overran 5-95 of 500 in
	// every run, and the speakers concealed no more (docs/performance.md,
	// "A late tick plays as of its slot"). A single room ticks as with
	// one phase.
	Phases int
	// OnTick, if set, hears how each tick of a phase's rooms went (Run
	// only). It is called from that phase's clock goroutine and must be
	// quick.
	OnTick func(TickTime)
	// BeforeTick, if set, runs at the start of every tick, before any
	// room's: a transport's chance to hand over what has arrived
	// (rtpudp.Transport.Drain), so that packets its reader has not got to
	// yet, on a busy machine, still play in this tick. With Phases above
	// 1 it runs before each phase's tick (not a phase without rooms, bar
	// the first), one call at a time. It runs on a ticking goroutine,
	// must be quick, and must not call Tick. Default none.
	BeforeTick func()

	// Admission control: NewRoom and Room.Join refuse what goes past a
	// cap, so that one room or one crowd cannot degrade every room.
	MaxRooms        int // rooms at most (ErrTooManyRooms); default 0, no limit
	MaxParticipants int // participants in all rooms at most (ErrEngineFull); default 0, no limit
	// MaxTickLoad refuses new rooms and joins (ErrOverloaded) while the
	// smoothed time of a tick of every room (an average over about a
	// second of ticks, Stats.TickLoad) is above this share of
	// TickInterval, so that the engine stops growing before its ticks
	// overrun; for example 0.5 (10 ms). With it set, the engine refuses
	// them while it sheds load too (Shed): its ticks then look cheaper
	// than the encodes it will go back to. Default 0: off.
	MaxTickLoad float64

	// Shed lowers every room's encoder complexity while Run's ticks near
	// their 20 ms (Stats.Shedding); the zero value sheds with its
	// defaults, Shed.Off never.
	Shed ShedConfig
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.MaxCatchUp <= 0 {
		c.MaxCatchUp = 100 * time.Millisecond
	}
	if c.Phases <= 0 {
		c.Phases = DefaultPhases
	}
	c.Phases = min(c.Phases, MaxPhases)
	c.Shed = c.Shed.withDefaults()
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

	phases   []*phase   // Run's clocks, each ticking its share of the rooms
	all      tickRun    // Tick's: every room
	beforeMu sync.Mutex // one BeforeTick at a time
	queueMu  sync.Mutex
	queue    []*tickRun    // ticks with rooms untaken, oldest first
	work     chan struct{} // wakes a worker to help with the queue
	slots    chan struct{} // Workers of them: held while ticking rooms
	stop     chan struct{}
	workers  sync.WaitGroup

	ticks, overruns atomic.Uint64
	skipped         atomic.Uint64 // Skip's, every room's; a phase's own are in phase.skipped
	members         atomic.Int64  // participants in every room
	load            atomic.Int64  // Tick's smoothed time, ns; Run's phases keep their own

	parts chan sendPart // a room's Send parts, for idle workers
	shed  shedder
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
		work:    make(chan struct{}, cfg.Workers),
		slots:   make(chan struct{}, cfg.Workers),
		stop:    make(chan struct{}),
		parts:   make(chan sendPart),
		shed:    shedder{cfg: cfg.Shed},
	}
	e.list.Store(&[]*Room{})
	e.all.done = make(chan struct{}, 1)
	e.phases = make([]*phase, cfg.Phases)
	for i := range e.phases {
		ph := &phase{index: i, wake: make(chan struct{}, 1)}
		ph.run.done = make(chan struct{}, 1)
		ph.rooms.Store(&[]*Room{})
		e.phases[i] = ph
	}
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
	r, err := newRoom(e, id, cfg, e.quietestPhaseLocked())
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
	byPhase := make([][]*Room, len(e.phases))
	for _, r := range e.rooms {
		list = append(list, r)
		byPhase[r.ph.index] = append(byPhase[r.ph.index], r)
	}
	e.list.Store(&list)
	for i, ph := range e.phases {
		rooms := byPhase[i]
		if rooms == nil {
			rooms = []*Room{}
			ph.load.Store(0) // no rooms, no load: a stale figure would refuse joins
		}
		ph.rooms.Store(&rooms)
		if len(rooms) > 0 {
			select {
			case ph.wake <- struct{}{}: // its clock may be asleep (Engine.idle)
			default:
			}
		}
	}
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
	e.lockPhases()
	close(e.stop)
	e.unlockPhases()
	e.workers.Wait()
}

// loadWeight is the weight of a tick in the smoothed tick time: about a
// second of ticks.
const loadWeight = 50

// observeLoad adds a tick's time to the smoothed tick time load. One
// goroutine at a time writes it, under the lock of the tick it times.
func observeLoad(load *atomic.Int64, d time.Duration) {
	old := load.Load()
	load.Store(old + (int64(d)-old)/loadWeight)
}

// tickLoad is the smoothed time of a tick of every room: Tick's, or the
// sum of the phases' under Run.
func (e *Engine) tickLoad() time.Duration {
	load := e.load.Load()
	for _, ph := range e.phases {
		load += ph.load.Load()
	}
	return time.Duration(load)
}

// checkLoad refuses growth, under Config.MaxTickLoad, while the smoothed
// tick time is above it or the engine sheds load.
func (e *Engine) checkLoad() error {
	if e.cfg.MaxTickLoad <= 0 {
		return nil
	}
	if e.shed.on.Load() {
		return fmt.Errorf("%w: shedding load", ErrOverloaded)
	}
	load, budget := e.tickLoad(), time.Duration(e.cfg.MaxTickLoad*float64(TickInterval))
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

// Stats is a snapshot of the engine's clock and totals.
type Stats struct {
	Rooms int
	Ticks uint64 // 20 ms ticks run: Tick's calls, or the first phase's ticks under Run
	// Overruns counts ticks of a phase's rooms that started late: the
	// phase's previous tick ran past this one's slot on its 20 ms grid,
	// and this one ran at once to catch up.
	Overruns uint64
	// Skipped counts ticks skipped because a clock fell more than
	// MaxCatchUp behind (a phase's counted once for its rooms), and
	// Engine.Skip's.
	Skipped uint64
	// TickLoad is the smoothed time of a tick of every room (the sum of
	// the phases'), over about a second of ticks: what Config.MaxTickLoad
	// compares.
	TickLoad time.Duration
	// Shedding says whether the engine is shedding load now (Config.Shed):
	// every room's encoders at the shedding complexity. ShedSpells counts
	// the times it started, ShedTicks the ticks of a phase's rooms run
	// while it was on.
	Shedding              bool
	ShedSpells, ShedTicks uint64
	Participants          int // in every room
	Counters                  // summed over all rooms, closed ones included
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
		Overruns: e.overruns.Load(), Skipped: e.skippedTotal(),
		TickLoad: e.tickLoad(), Participants: int(e.members.Load()),
		Shedding: e.shed.on.Load(), ShedSpells: e.shed.spells.Load(), ShedTicks: e.shed.ticks.Load(),
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
