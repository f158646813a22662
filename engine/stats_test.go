package engine_test

import (
	"fmt"
	"sync"
	"testing"

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
