package engine_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/handsup-audio/handsup/engine"
)

func TestMaxRooms(t *testing.T) {
	eng := engine.New(engine.Config{Workers: 1, MaxRooms: 2})
	defer eng.Close()
	for _, id := range []string{"a", "b"} {
		if _, err := eng.NewRoom(id, engine.RoomConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := eng.NewRoom("c", engine.RoomConfig{}); !errors.Is(err, engine.ErrTooManyRooms) {
		t.Fatalf("a third room: %v, want ErrTooManyRooms", err)
	}
	if err := eng.CloseRoom("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.NewRoom("c", engine.RoomConfig{}); err != nil {
		t.Errorf("a room after one closed: %v", err)
	}
}

// A capped room never holds more than its cap, however many join at once;
// a leave makes room for one more.
func TestRoomMaxParticipants(t *testing.T) {
	eng := engine.New(engine.Config{Workers: 1})
	defer eng.Close()
	const limit = 10
	r, err := eng.NewRoom("r", engine.RoomConfig{MaxParticipants: limit})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	full := 0
	for i := range 4 * limit {
		wg.Add(1)
		go func() {
			defer wg.Done()
			role := engine.Listener
			if i%4 == 0 {
				role = engine.Speaker
			}
			_, err := r.Join(fmt.Sprint("p", i), engine.ParticipantConfig{Role: role})
			switch {
			case errors.Is(err, engine.ErrRoomFull):
				mu.Lock()
				full++
				mu.Unlock()
			case err != nil:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if r.Len() != limit || full != 3*limit {
		t.Fatalf("%d members and %d refusals, want %d and %d", r.Len(), full, limit, 3*limit)
	}
	if s := eng.Stats(); s.Participants != limit {
		t.Errorf("engine counts %d participants, want %d", s.Participants, limit)
	}
	if err := r.Kick(r.Participants()[0].ID(), engine.ReasonLeft); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Join("late", engine.ParticipantConfig{}); err != nil {
		t.Errorf("a join after a leave: %v", err)
	}
	if _, err := r.Join("later", engine.ParticipantConfig{}); !errors.Is(err, engine.ErrRoomFull) {
		t.Errorf("a join past the cap: %v, want ErrRoomFull", err)
	}
}

func TestEngineMaxParticipants(t *testing.T) {
	eng := engine.New(engine.Config{Workers: 1, MaxParticipants: 3})
	defer eng.Close()
	a, _ := eng.NewRoom("a", engine.RoomConfig{})
	b, _ := eng.NewRoom("b", engine.RoomConfig{})
	for _, j := range []struct {
		r  *engine.Room
		id string
	}{{a, "1"}, {a, "2"}, {b, "3"}} {
		if _, err := j.r.Join(j.id, engine.ParticipantConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Join("4", engine.ParticipantConfig{}); !errors.Is(err, engine.ErrEngineFull) {
		t.Fatalf("a fourth participant: %v, want ErrEngineFull", err)
	}
	if err := eng.CloseRoom("a"); err != nil { // its two leave
		t.Fatal(err)
	}
	if s := eng.Stats(); s.Participants != 1 {
		t.Errorf("%d participants after a room of two closed, want 1", s.Participants)
	}
	for _, id := range []string{"4", "5"} {
		if _, err := b.Join(id, engine.ParticipantConfig{}); err != nil {
			t.Errorf("join %s after a room closed: %v", id, err)
		}
	}
}

// With MaxTickLoad set below what a tick costs, the engine refuses new
// rooms and joins; members already in stay.
func TestMaxTickLoad(t *testing.T) {
	eng := engine.New(engine.Config{Workers: 1, MaxTickLoad: 1e-6}) // 20 ns
	defer eng.Close()
	room, err := eng.NewRoom("busy", engine.RoomConfig{NoDTX: true})
	if err != nil {
		t.Fatalf("before any tick: %v", err)
	}
	if _, err := room.Join("l", engine.ParticipantConfig{}); err != nil {
		t.Fatal(err)
	}
	eng.Tick() // encodes the room's mix: microseconds at least
	if s := eng.Stats(); s.TickLoad <= 20 {
		t.Fatalf("tick load %v after a tick that encodes", s.TickLoad)
	}
	if _, err := room.Join("m", engine.ParticipantConfig{}); !errors.Is(err, engine.ErrOverloaded) {
		t.Errorf("join over the load cap: %v, want ErrOverloaded", err)
	}
	if _, err := eng.NewRoom("more", engine.RoomConfig{}); !errors.Is(err, engine.ErrOverloaded) {
		t.Errorf("new room over the load cap: %v, want ErrOverloaded", err)
	}
	if room.Len() != 1 {
		t.Errorf("%d members, want the one already in", room.Len())
	}
}
