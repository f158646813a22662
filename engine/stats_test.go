package engine_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/engine"
)

// TestStatsNeverFallWhileRoomsClose: Stats read while rooms close must
// never see a total fall (a room between leaving the list and joining the
// closed rooms' totals was missed).
func TestStatsNeverFallWhileRoomsClose(t *testing.T) {
	e := engine.New(engine.Config{Workers: 1})
	defer e.Close()
	sink := engine.SinkFunc(func(h, p []byte) error { return nil })
	for i := range 50 {
		r, err := e.NewRoom(fmt.Sprint("r", i), engine.RoomConfig{})
		if err != nil {
			t.Fatal(err)
		}
		for j := range 3 {
			if _, err := r.Join(fmt.Sprint("p", j), engine.ParticipantConfig{Sink: sink}); err != nil {
				t.Fatal(err)
			}
		}
		_ = r.Participants()[0].WriteRTP([]byte("not rtp")) // one drop per room
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range 50 {
			_ = e.CloseRoom(fmt.Sprint("r", i))
		}
	}()
	var last engine.Stats
	for range 2000 {
		s := e.Stats()
		if s.Joined[engine.Listener] < last.Joined[engine.Listener] || s.DroppedTotal() < last.DroppedTotal() {
			t.Fatalf("totals fell: joined %d -> %d, dropped %d -> %d",
				last.Joined[engine.Listener], s.Joined[engine.Listener], last.DroppedTotal(), s.DroppedTotal())
		}
		last = s
	}
	wg.Wait()
	s := e.Stats()
	if s.Joined[engine.Listener] != 150 || s.DroppedTotal() != 50 || s.Left[3] != 150 {
		t.Errorf("after closing every room: joined %d, dropped %d, left (room_closed) %d; want 150, 50, 150",
			s.Joined[engine.Listener], s.DroppedTotal(), s.Left[3])
	}
}

// A room's tick time is split into building, encoding and sending: the
// sends (RoomConfig.Send) count at least what they took, every encode
// counts, and the three never sum past the wall time of the ticks.
func TestTickTimeSplitsIntoBuildEncodeSend(t *testing.T) {
	const sendTakes = 2 * time.Millisecond
	r := newTestRoom(t, engine.RoomConfig{Send: func(int, int) { time.Sleep(sendTakes) }})
	r.join("s", engine.Speaker, 440, 0.3)
	r.join("l", engine.Listener, 0, 0)
	r.run(5)
	before := r.room.Counters()
	const ticks = 10
	start := time.Now()
	r.run(ticks)
	wall := time.Since(start)
	c := r.room.Counters()
	build, encode, send := c.BuildTime-before.BuildTime, c.EncodeTime-before.EncodeTime, c.SendTime-before.SendTime
	if send < ticks*sendTakes {
		t.Errorf("SendTime grew %v over %d ticks whose Send slept %v each", send, ticks, sendTakes)
	}
	if c.Encodes == before.Encodes || encode <= 0 || build <= 0 {
		t.Errorf("%d encodes: EncodeTime grew %v, BuildTime %v; want both above 0", c.Encodes-before.Encodes, encode, build)
	}
	if sum := build + encode + send; sum > wall {
		t.Errorf("build %v + encode %v + send %v = %v, past the %v the ticks took", build, encode, send, sum, wall)
	}
	if total := r.eng.Stats(); total.SendTime < c.SendTime {
		t.Errorf("engine's SendTime %v below its one room's %v", total.SendTime, c.SendTime)
	}
}
