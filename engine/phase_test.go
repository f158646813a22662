package engine

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// New rooms go to the phase with the fewest, so that Run's clocks share
// the rooms evenly, and a phase a room left fills first.
func TestRoomsSpreadOverPhases(t *testing.T) {
	e := New(Config{Workers: 1, Phases: 4})
	defer e.Close()
	rooms := map[string]*Room{}
	for i := range 10 {
		r, err := e.NewRoom(fmt.Sprint("r", i), RoomConfig{})
		if err != nil {
			t.Fatal(err)
		}
		rooms[r.ID()] = r
	}
	count := func() []int {
		n := make([]int, len(e.phases))
		for i, ph := range e.phases {
			n[i] = len(*ph.rooms.Load())
			for _, r := range *ph.rooms.Load() {
				if r.ph != ph {
					t.Errorf("room %s listed in phase %d, its phase %d", r.ID(), i, r.ph.index)
				}
			}
		}
		return n
	}
	if got := fmt.Sprint(count()); got != "[3 3 2 2]" {
		t.Fatalf("10 rooms over 4 phases: %v, want [3 3 2 2]", got)
	}
	// Empty phase 1 of its three rooms: the next rooms go there.
	for id, r := range rooms {
		if r.ph.index == 1 {
			if err := e.CloseRoom(id); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range 2 {
		if _, err := e.NewRoom(fmt.Sprint("new", i), RoomConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	if got := fmt.Sprint(count()); got != "[3 2 2 2]" {
		t.Fatalf("after emptying phase 1 and adding 2 rooms: %v, want [3 2 2 2]", got)
	}
	if n := len(*e.list.Load()); n != 9 {
		t.Errorf("%d rooms listed, want 9", n)
	}
}

// A phase's skipped ticks move its own rooms' stream clocks on, not the
// other phases' rooms'; Engine.Skip moves every room's.
func TestPhaseSkipMovesItsRoomsOnly(t *testing.T) {
	e := New(Config{Workers: 1, Phases: 2})
	defer e.Close()
	a, _ := e.NewRoom("a", RoomConfig{})
	b, _ := e.NewRoom("b", RoomConfig{})
	if a.ph == b.ph {
		t.Fatal("two rooms on one phase of two")
	}
	e.Tick()
	a.ph.skipped.Add(5)
	e.Tick()
	if ta, tb := a.Snapshot().Ticks, b.Snapshot().Ticks; ta != 7 || tb != 2 {
		t.Errorf("after 2 ticks and 5 skipped in a's phase: a at %d, b at %d; want 7 and 2", ta, tb)
	}
	e.Skip(3)
	e.Tick()
	if ta, tb := a.Snapshot().Ticks, b.Snapshot().Ticks; ta != 11 || tb != 6 {
		t.Errorf("after 3 more skipped by Engine.Skip and a tick: a at %d, b at %d; want 11 and 6", ta, tb)
	}
	if s := e.Stats(); s.Skipped != 8 {
		t.Errorf("Stats.Skipped %d, want 8", s.Skipped)
	}
}

// Run ticks each phase on its own 20 ms grid, the grids TickInterval/Phases
// apart, and every room on its phase's clock.
func TestRunTicksPhasesOnOffsetGrids(t *testing.T) {
	const phases = 4
	log := newSlotLog(phases)
	e := New(Config{Workers: 2, Phases: phases, OnTick: log.record})
	defer e.Close()
	var sent [phases]atomic.Int64
	for i := range phases {
		i := i
		if _, err := e.NewRoom(fmt.Sprint("r", i), RoomConfig{NoDTX: true, Send: func(int, int) { sent[i].Add(1) }}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	log.waitFor(t, 3, 0, 1, 2, 3) // a few ticks of every phase
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
	for ph := range phases {
		log.offsets(t, ph, phases)
		if n := sent[ph].Load(); n == 0 {
			t.Errorf("room %d (phase %d) never ticked", ph, ph)
		}
	}
}

// However many phases' ticks meet, no more than Workers rooms tick at
// once: each tick holds one of the Workers slots.
func TestPhasesTickAtMostWorkersRoomsAtOnce(t *testing.T) {
	const workers = 2
	var now, most atomic.Int64
	send := func(int, int) {
		n := now.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		time.Sleep(3 * time.Millisecond) // long enough for the phases' ticks to meet
		now.Add(-1)
	}
	e := New(Config{Workers: workers, Phases: 4})
	defer e.Close()
	for i := range 16 {
		if _, err := e.NewRoom(fmt.Sprint("r", i), RoomConfig{NoDTX: true, Send: send}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = e.Run(ctx)
	if m := most.Load(); m > workers {
		t.Errorf("%d rooms ticked at once, want at most %d (Workers)", m, workers)
	}
}

// With phases, BeforeTick runs before each phase's tick, one call at a
// time, so a transport's drain never runs twice at once.
func TestBeforeTickOneAtATimeAcrossPhases(t *testing.T) {
	var now, most, calls atomic.Int64
	e := New(Config{Workers: 2, Phases: 4, BeforeTick: func() {
		n := now.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		calls.Add(1)
		time.Sleep(6 * time.Millisecond) // past the next phase's slot: the calls would meet
		now.Add(-1)
	}})
	defer e.Close()
	for i := range 4 {
		if _, err := e.NewRoom(fmt.Sprint("r", i), RoomConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = e.Run(ctx)
	if m := most.Load(); m != 1 {
		t.Errorf("%d BeforeTick calls at once, want 1", m)
	}
	if calls.Load() == 0 {
		t.Error("BeforeTick never ran")
	}
}

// A phase without rooms sleeps rather than waking every 20 ms to find
// none, and a room that joins it wakes it: the room ticks on the phase's
// own grid.
func TestIdlePhaseSleepsUntilARoomJoins(t *testing.T) {
	const phases = 2
	log := newSlotLog(phases)
	e := New(Config{Workers: 1, Phases: phases, OnTick: log.record})
	defer e.Close()
	if _, err := e.NewRoom("first", RoomConfig{NoDTX: true}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	// Phase 0 ticks its room ten times; phase 1, with none, woke once (its
	// first slot) and then slept through them, however slow the machine.
	log.waitFor(t, 10, 0)
	idle := e.phases[1]
	if n := idle.wakeUps.Load(); n > 1 {
		t.Errorf("the idle phase woke %d times while phase 0 ticked 10 times, want at most 1", n)
	}
	// A second room goes to phase 1 and wakes its clock.
	r, err := e.NewRoom("second", RoomConfig{NoDTX: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.ph != idle {
		t.Fatalf("the second room went to phase %d, want 1", r.ph.index)
	}
	log.waitFor(t, 3, 1)
	cancel()
	if err := <-done; err != context.Canceled {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
	log.offsets(t, 1, phases) // on its grid after waking
	if ticks := r.Snapshot().Ticks; ticks < 3 {
		t.Errorf("the room that woke phase 1 ticked %d times, want at least 3", ticks)
	}
}

// slotLog records the slot of every phase tick Run makes (Config.OnTick).
type slotLog struct {
	mu    sync.Mutex
	slots [][]time.Time
}

func newSlotLog(phases int) *slotLog { return &slotLog{slots: make([][]time.Time, phases)} }

func (l *slotLog) record(tt TickTime) {
	l.mu.Lock()
	l.slots[tt.Phase] = append(l.slots[tt.Phase], tt.Slot)
	l.mu.Unlock()
}

// count is how many ticks phase ph has made.
func (l *slotLog) count(ph int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.slots[ph])
}

// waitFor waits until each of phases has ticked n times, however slow the
// machine, for up to 30 s.
func (l *slotLog) waitFor(t *testing.T, n int, phases ...int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		enough := true
		for _, ph := range phases {
			enough = enough && l.count(ph) >= n
		}
		if enough {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("phases %v did not tick %d times each in 30 s", phases, n)
		}
	}
}

// offsets checks that every tick of phase ph fell on its grid: ph times
// TickInterval/phases after phase 0's first slot.
func (l *slotLog) offsets(t *testing.T, ph, phases int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	first := l.slots[0][0]
	for i, slot := range l.slots[ph] {
		if off, want := slot.Sub(first)%TickInterval, time.Duration(ph)*TickInterval/time.Duration(phases); off != want {
			t.Errorf("phase %d's tick %d due %v into the 20 ms grid, want %v", ph, i, off, want)
		}
	}
}
