package engine_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/handsup-audio/handsup/engine"
)

// prefetchSink records, in one log shared by every sink of a room, the
// prefetches and writes the engine makes.
type prefetchSink struct {
	id  string
	mu  *sync.Mutex
	log *[]string
}

func (s prefetchSink) WriteRTP(_, _ []byte) error {
	s.mu.Lock()
	*s.log = append(*s.log, "write "+s.id)
	s.mu.Unlock()
	return nil
}

func (s prefetchSink) Prefetch(ahead int) {
	s.mu.Lock()
	*s.log = append(*s.log, fmt.Sprintf("prefetch%d %s", ahead, s.id))
	s.mu.Unlock()
}

// The engine prefetches a Prefetcher sink's state four listeners ahead
// (the first four before the first send) and what it points to two
// ahead, every listener in turn, and keeps doing so right after a
// listener in the middle leaves.
func TestPrefetchAhead(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{})
	r.join("s", engine.Speaker, 440, 0.3)
	var mu sync.Mutex
	var log []string
	for _, id := range []string{"a", "b", "c", "d"} {
		if _, err := r.room.Join(id, engine.ParticipantConfig{Role: engine.Listener,
			Sink: prefetchSink{id: id, mu: &mu, log: &log}}); err != nil {
			t.Fatal(err)
		}
	}
	r.run(10) // the speaker's tone reaches the room's mix
	tick := func() []string {
		mu.Lock()
		log = log[:0]
		mu.Unlock()
		r.run(1)
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), log...)
	}
	// Members in join order: s, a, b, c, d.
	got := tick()
	wantFull := []string{
		"prefetch2 a", "prefetch2 b", "prefetch2 c", // the first four (s is not a Prefetcher)
		"prefetch2 d", "prefetch1 b", // s's turn
		"prefetch1 c", "write a",
		"prefetch1 d", "write b",
		"write c",
		"write d",
	}
	if fmt.Sprint(got) != fmt.Sprint(wantFull) {
		t.Fatalf("tick:\n got %q\nwant %q", got, wantFull)
	}
	// b leaves: d takes its place in the member list.
	if err := r.room.Kick("b", engine.ReasonKicked); err != nil {
		t.Fatal(err)
	}
	got = tick()
	wantAfter := []string{
		"prefetch2 a", "prefetch2 d", "prefetch2 c",
		"prefetch1 d", // s's turn
		"prefetch1 c", "write a",
		"write d",
		"write c",
	}
	if fmt.Sprint(got) != fmt.Sprint(wantAfter) {
		t.Fatalf("after b left:\n got %q\nwant %q", got, wantAfter)
	}
}
