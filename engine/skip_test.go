package engine_test

import (
	"testing"

	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/engine"
)

// When the engine skips ticks (overload), every output stream's timestamp
// moves on over them, so a receiver sees a gap it conceals and stays on
// real time; the sequence numbers stay contiguous, as RTP requires.
func TestSkippedTicksKeepTime(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{NoDTX: true})
	r.join("alice", engine.Speaker, 440, 0.3)
	bob := r.join("bob", engine.Listener, 0, 0)
	r.run(10)

	const skipped = 50
	bob.mu.Lock()
	before := bob.headers[len(bob.headers)-1]
	n := len(bob.headers)
	bob.mu.Unlock()
	_, tsBefore, _, _ := bob.p.OutputInfo()
	r.clock.Advance(skipped * engine.TickInterval)
	r.eng.Skip(skipped)
	r.run(1)

	bob.mu.Lock()
	defer bob.mu.Unlock()
	if len(bob.headers) != n+1 {
		t.Fatalf("bob got %d packets on the tick after the skip, want 1", len(bob.headers)-n)
	}
	after := bob.headers[n]
	if got, want := after.Timestamp-before.Timestamp, uint32((skipped+1)*codec.FrameSamples); got != want {
		t.Errorf("timestamp advanced %d over %d skipped ticks and one run, want %d", got, skipped, want)
	}
	if got := after.SequenceNumber - before.SequenceNumber; got != 1 {
		t.Errorf("sequence number advanced %d, want 1 (contiguous)", got)
	}
	if _, ts, _, _ := bob.p.OutputInfo(); ts-tsBefore != uint32((skipped+1)*codec.FrameSamples) {
		t.Errorf("sender-report timestamp advanced %d, want %d", ts-tsBefore, (skipped+1)*codec.FrameSamples)
	}
	if s := r.eng.Stats(); s.Skipped != skipped {
		t.Errorf("Stats.Skipped = %d, want %d", s.Skipped, skipped)
	}
	if s := r.room.Snapshot(); s.Ticks != 11+skipped {
		t.Errorf("room clock %d ticks, want %d (11 run, %d skipped)", s.Ticks, 11+skipped, skipped)
	}
}

// A room created after a skip does not count it.
func TestSkipBeforeRoom(t *testing.T) {
	eng := engine.New(engine.Config{Workers: 1})
	defer eng.Close()
	eng.Skip(7)
	r, err := eng.NewRoom("late", engine.RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	eng.Tick()
	if got := r.Snapshot().Ticks; got != 1 {
		t.Errorf("room clock %d ticks after one tick, want 1", got)
	}
}
