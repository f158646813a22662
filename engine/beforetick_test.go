package engine_test

import (
	"testing"

	"github.com/handsup-audio/handsup/engine"
)

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
