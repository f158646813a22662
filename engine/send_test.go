package engine_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/engine"
)

// A room's send runs with its lock released: while a tick's Send is
// blocked (a kernel that does not take the datagrams), participants join,
// leave, change roles and mute, and the tick finishes once the send
// returns.
func TestSendOutsideRoomLock(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	r := newTestRoom(t, engine.RoomConfig{Send: func(part, parts int) {
		once.Do(func() {
			close(entered)
			<-release
		})
	}})
	r.join("s", engine.Speaker, 440, 0.3)
	r.join("l", engine.Listener, 0, 0)
	ticked := make(chan struct{})
	go func() {
		r.eng.Tick()
		close(ticked)
	}()
	wait(t, entered, "the tick's Send")

	done := make(chan error)
	go func() {
		p, err := r.room.Join("late", engine.ParticipantConfig{Role: engine.Listener})
		if err == nil {
			err = p.SetRole(engine.Speaker)
		}
		if err == nil {
			p.SetMuted(true)
			err = r.room.Kick("l", engine.ReasonKicked)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("joins and leaves waited for a blocked send")
	}
	select {
	case <-ticked:
		t.Fatal("the tick ended before its send did")
	default:
	}
	close(release)
	wait(t, ticked, "the tick")
	if n := r.room.Len(); n != 2 {
		t.Fatalf("%d members, want s and late", n)
	}
}

// A large room's Send is split in parts, one per SendSplit sinks up to
// the engine's workers, and every part is sent once per tick.
func TestSendSplitsLargeRooms(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	r := newTestRoom(t, engine.RoomConfig{SendSplit: 3, Send: func(part, parts int) {
		mu.Lock()
		calls[fmt.Sprintf("%d/%d", part, parts)]++
		mu.Unlock()
	}})
	r.join("s", engine.Speaker, 440, 0.3)
	for i := range 6 {
		if _, err := r.room.Join(fmt.Sprint("l", i), engine.ParticipantConfig{Role: engine.Listener}); err != nil {
			t.Fatal(err)
		}
	}
	r.run(3)
	// 7 sinks, 3 a part: 3 parts, of which the test room's 2 workers allow 2.
	if want := map[string]int{"0/2": 3, "1/2": 3}; fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("Send calls %v, want %v", calls, want)
	}
}

// A room whose sends in one part take longer than SplitSendAfter sends
// in parts once it has timed 16 of them, however few its sinks: the
// engine times its sends.
func TestSlowSendSplits(t *testing.T) {
	var mu sync.Mutex
	var parts []int
	r := newTestRoom(t, engine.RoomConfig{SplitSendAfter: 2 * time.Millisecond, Send: func(part, n int) {
		if part != 0 {
			return
		}
		mu.Lock()
		parts = append(parts, n)
		mu.Unlock()
		if n == 1 {
			time.Sleep(4 * time.Millisecond) // twice SplitSendAfter, at least
		}
	}})
	r.join("s", engine.Speaker, 440, 0.3)
	if _, err := r.room.Join("l", engine.ParticipantConfig{Role: engine.Listener}); err != nil {
		t.Fatal(err)
	}
	r.run(20)
	mu.Lock()
	defer mu.Unlock()
	want := append(slices.Repeat([]int{1}, 16), 2, 2, 2, 2)
	if !slices.Equal(parts, want) {
		t.Fatalf("Send parts a tick %v, want %v: 16 slow ticks timed, then the test room's 2 workers", parts, want)
	}
	if n := r.room.Counters().SplitSends; n != 4 {
		t.Fatalf("Counters.SplitSends %d, want 4", n)
	}
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not come", what)
	}
}
