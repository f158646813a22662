package engine_test

import (
	"testing"
	"time"

	"github.com/handsup-audio/handsup/engine"
)

// TestWriteRTPWaitedCountsTheWait: packets read in pairs every 40 ms, the
// first of each having waited 20 ms for a reader the machine kept busy,
// look like 20 ms of network jitter when handed over as they are read, and
// like the steady stream they are when handed over with how long each
// waited (a transport reading kernel receive timestamps): that speaker's
// jitter buffer stays at its floor, the other's target rises.
func TestWriteRTPWaitedCountsTheWait(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{})
	read := r.join("read", engine.Speaker, 440, 0.3)
	stamped := r.join("stamped", engine.Speaker, 660, 0.3)
	r.join("listener", engine.Listener, 0, 0)
	var wait time.Duration
	stamped.write = func(pkt []byte) { _ = stamped.p.WriteRTPWaited(pkt, wait) }
	for i := range 500 { // 10 s
		if i%2 == 1 {
			for _, w := range []time.Duration{engine.TickInterval, 0} {
				wait = w
				read.speak()
				stamped.speak()
			}
		}
		r.clock.Advance(engine.TickInterval)
		r.eng.Tick()
	}
	target := map[string]time.Duration{}
	for _, sp := range r.room.Snapshot().Speakers {
		target[sp.ID] = sp.Jitter.TargetDelay
	}
	if target["stamped"] > 2*engine.TickInterval || target["read"] < target["stamped"]+engine.TickInterval/2 {
		t.Errorf("jitter-buffer targets: %v for the speaker whose packets came with their wait, %v for the one read in pairs; want the first at most 40 ms and 10 ms under the second",
			target["stamped"], target["read"])
	}
}

// TestBeforeTick: the hook runs once at the start of every tick, before
// the tick is done.
func TestBeforeTick(t *testing.T) {
	var eng *engine.Engine
	var during []uint64
	eng = engine.New(engine.Config{Workers: 1, BeforeTick: func() { during = append(during, eng.Stats().Ticks) }})
	t.Cleanup(eng.Close)
	if _, err := eng.NewRoom("hook", engine.RoomConfig{}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		eng.Tick()
	}
	if len(during) != 3 || during[0] != 0 || during[1] != 1 || during[2] != 2 {
		t.Fatalf("BeforeTick saw the ticks done so far as %v over 3 ticks; want [0 1 2]", during)
	}
}
