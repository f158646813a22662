package engine_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/internal/fakeclock"
)

// Tone frequencies, apart enough for Goertzel over a second of audio and
// inside what Opus keeps at 32 kbps.
const (
	fA = 440.0
	fB = 770.0
	fC = 1230.0
	fD = 1710.0
)

// warmUp covers the jitter buffers' start delay and the codecs' start.
const warmUp = 25

func TestSpeakersHearEveryoneButThemselves(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{})
	a := r.join("a", engine.Speaker, fA, 0.25)
	b := r.join("b", engine.Speaker, fB, 0.25)
	c := r.join("c", engine.Moderator, fC, 0.25)
	l := r.join("l", engine.Listener, 0, 0)
	r.run(warmUp)
	ma, mb, mc, ml := a.mark(), b.mark(), c.mark(), l.mark()
	r.run(50)

	r.expectHears(a, ma, fB, fC)
	r.expectNotHears(a, ma, fA)
	r.expectHears(b, mb, fA, fC)
	r.expectNotHears(b, mb, fB)
	r.expectHears(c, mc, fA, fB)
	r.expectNotHears(c, mc, fC)
	r.expectHears(l, ml, fA, fB, fC)
	for _, x := range []*client{a, b, c, l} {
		x.expectContinuous()
	}
}

func TestMutedSpeakerIsAbsent(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{})
	a := r.join("a", engine.Speaker, fA, 0.25)
	b := r.join("b", engine.Speaker, fB, 0.25)
	l := r.join("l", engine.Listener, 0, 0)
	r.run(warmUp)
	b.p.SetMuted(true)
	r.run(5) // the private encoder's tail drains
	ma, mb, ml := a.mark(), b.mark(), l.mark()
	r.run(50)
	r.expectHears(l, ml, fA)
	r.expectNotHears(l, ml, fB)
	r.expectNotHears(a, ma, fB)
	r.expectHears(b, mb, fA) // a muted speaker still hears the room
	r.expectNotHears(b, mb, fB)

	b.p.SetMuted(false)
	r.run(5)
	ml = l.mark()
	r.run(50)
	r.expectHears(l, ml, fA, fB)
	for _, x := range []*client{a, b, l} {
		x.expectContinuous()
	}
}

func TestRoleChangesKeepStreamsContinuous(t *testing.T) {
	var events []engine.Event
	var evMu sync.Mutex
	r := newTestRoom(t, engine.RoomConfig{OnEvent: func(e engine.Event) {
		evMu.Lock()
		events = append(events, e)
		evMu.Unlock()
	}})
	a := r.join("a", engine.Speaker, fA, 0.25)
	b := r.join("b", engine.Speaker, fB, 0.25)
	h := r.join("h", engine.Listener, fC, 0.25) // a listener who talks anyway
	l := r.join("l", engine.Listener, 0, 0)
	r.run(warmUp)

	ml := l.mark()
	r.run(50)
	r.expectHears(l, ml, fA, fB)
	r.expectNotHears(l, ml, fC) // a listener's audio is dropped
	if got := r.room.Counters().Dropped[engine.DropNotSpeaker]; got == 0 {
		t.Error("a listener's packets were not counted as dropped")
	}

	// Demote b: it leaves the mix at once and now hears a as a listener.
	if err := b.p.SetRole(engine.Listener); err != nil {
		t.Fatal(err)
	}
	r.run(5)
	ml, mb := l.mark(), b.mark()
	r.run(50)
	r.expectHears(l, ml, fA)
	r.expectNotHears(l, ml, fB)
	r.expectHears(b, mb, fA)

	// Raise a hand and promote: h is heard from its next packets.
	if !h.p.RaiseHand() || !h.p.HandRaised() {
		t.Fatal("hand did not go up")
	}
	if err := h.p.SetRole(engine.Speaker); err != nil {
		t.Fatal(err)
	}
	h.p.LowerHand()
	r.run(warmUp)
	ml, mh := l.mark(), h.mark()
	r.run(50)
	r.expectHears(l, ml, fA, fC)
	r.expectNotHears(h, mh, fC)
	r.expectHears(h, mh, fA)

	for _, x := range []*client{a, b, h, l} {
		x.expectContinuous()
	}
	evMu.Lock()
	defer evMu.Unlock()
	var roles, hands int
	for _, e := range events {
		switch e.Kind {
		case engine.EventRole:
			roles++
		case engine.EventHand:
			hands++
		}
	}
	if roles != 2 || hands != 2 {
		t.Errorf("events: %d role changes (want 2), %d hand changes (want 2)", roles, hands)
	}
}

func TestLoudMixDoesNotWrap(t *testing.T) {
	// Two speakers at nearly full scale, in phase: the sum is twice what
	// int16 holds. The limiter must turn it down, not wrap it around.
	r := newTestRoom(t, engine.RoomConfig{})
	r.join("a", engine.Speaker, fA, 0.98)
	r.join("b", engine.Speaker, fA, 0.98)
	l := r.join("l", engine.Listener, 0, 0)
	r.run(warmUp)
	ml := l.mark()
	r.run(50)
	heard := l.since(ml)
	fundamental := signal.ToneDB(heard, fA)
	if fundamental < -4 {
		t.Errorf("loud mix lost its tone: %.1f dB", fundamental)
	}
	// Wrap-around or hard clipping of a sine spreads energy into odd
	// harmonics; a limited sine keeps them far below the fundamental.
	for _, k := range []float64{3, 5} {
		h := signal.ToneDB(heard, k*fA)
		t.Logf("fundamental %.1f dB, harmonic %v× %.1f dB", fundamental, k, h)
		if h > fundamental-25 {
			t.Errorf("harmonic %v×: %.1f dB against %.1f dB fundamental: distorted", k, h, fundamental)
		}
	}
}

func TestBadInputIsCountedAndHarmsNobody(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{})
	a := r.join("a", engine.Speaker, fA, 0.25)
	bad := r.join("bad", engine.Speaker, 0, 0)
	lis := r.join("lis", engine.Listener, 0, 0)
	l := r.join("l", engine.Listener, 0, 0)
	r.run(warmUp)

	garbage := []struct {
		name string
		from *client
		pkt  []byte
		want error
	}{
		{"empty", bad, nil, engine.ErrMalformedRTP},
		{"truncated header", bad, []byte{0x80, 111, 0, 1}, engine.ErrMalformedRTP},
		{"version 1", bad, append([]byte{0x40, 111}, make([]byte, 20)...), engine.ErrMalformedRTP},
		{"header only", bad, bad.rtp(nil), engine.ErrMalformedRTP},
		{"csrc past the end", bad, []byte{0x8f, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xfc}, engine.ErrMalformedRTP},
		{"wrong payload type", bad, withPT(bad.rtp([]byte{0xfc, 1, 2}), 96), engine.ErrPayloadType},
		{"bad opus toc", bad, bad.rtp([]byte{0x03}), engine.ErrJitterDrop},
		{"from a listener", lis, lis.rtp([]byte{0xfc, 1, 2}), engine.ErrNotSpeaker},
	}
	for _, g := range garbage {
		if err := g.from.p.WriteRTP(g.pkt); !errors.Is(err, g.want) {
			t.Errorf("%s: got %v, want %v", g.name, err, g.want)
		}
	}
	// A payload that parses but does not decode is concealed, and counted.
	for range 3 {
		if err := bad.p.WriteRTP(bad.rtp([]byte{0xfc, 0xff, 0xff, 0xff, 0xff})); err != nil {
			t.Errorf("well-formed packet refused: %v", err)
		}
	}
	ml := l.mark()
	r.run(50)
	r.expectHears(l, ml, fA)
	a.expectContinuous()
	l.expectContinuous()

	c := r.room.Counters()
	if c.Dropped[engine.DropMalformed] < 5 || c.Dropped[engine.DropPayloadType] != 1 ||
		c.Dropped[engine.DropNotSpeaker] != 1 || c.Dropped[engine.DropBadOpus] != 1 {
		t.Errorf("drop counters: %v", c.Dropped)
	}

	bad.p.Leave()
	if err := bad.p.WriteRTP(bad.rtp([]byte{0xfc, 1, 2})); !errors.Is(err, engine.ErrLeft) {
		t.Errorf("after leaving: %v", err)
	}
}

func withPT(pkt []byte, pt byte) []byte {
	pkt[1] = pkt[1]&0x80 | pt
	return pkt
}

func TestListenersShareOneEncoder(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{})
	r.join("a", engine.Speaker, fA, 0.25)
	r.join("b", engine.Speaker, fB, 0.25)
	r.join("c", engine.Speaker, fC, 0.25)
	quiet := r.join("q", engine.Speaker, fD, 0.25) // on stage, says nothing
	quiet.silence = true
	const listeners = 200
	var mu sync.Mutex
	payloads := map[string]int{}
	ssrcs := map[uint32]bool{}
	for i := range listeners {
		p, err := r.room.Join("l"+string(rune('a'+i%26))+string(rune('a'+i/26)), engine.ParticipantConfig{
			Sink: engine.SinkFunc(func(h, payload []byte) error {
				mu.Lock()
				payloads[string(payload)]++
				mu.Unlock()
				return nil
			})})
		if err != nil {
			t.Fatal(err)
		}
		ssrcs[p.SSRC()] = true
	}
	if len(ssrcs) != listeners {
		t.Errorf("%d distinct SSRCs for %d listeners", len(ssrcs), listeners)
	}
	r.run(warmUp)
	before := r.room.Counters()
	const ticks = 50
	for range ticks {
		mu.Lock()
		clear(payloads)
		mu.Unlock()
		r.run(1)
		mu.Lock()
		if len(payloads) != 1 {
			t.Fatalf("listeners got %d different payloads in one tick, want 1", len(payloads))
		}
		mu.Unlock()
	}
	after := r.room.Counters()
	// Three talking speakers hear their own mix-minus; the silent one and
	// every listener share one encoder.
	if enc := after.Encodes - before.Encodes; enc != 4*ticks {
		t.Errorf("%d encodes in %d ticks, want %d", enc, ticks, 4*ticks)
	}
	if out := after.PacketsOut - before.PacketsOut; out != (listeners+4)*ticks {
		t.Errorf("%d packets out, want %d", out, (listeners+4)*ticks)
	}
}

func TestSinkErrorsAreCountedAndTheParticipantStays(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{})
	r.join("a", engine.Speaker, fA, 0.25)
	l := r.join("l", engine.Listener, 0, 0)
	l.failSink = true
	r.run(10)
	if got := r.room.Counters().SinkErrors; got != 10 {
		t.Errorf("sink errors %d, want 10", got)
	}
	if _, ok := r.room.Participant("l"); !ok {
		t.Error("a failing sink removed its participant")
	}
	l.mu.Lock()
	l.failSink = false
	l.mu.Unlock()
	r.run(warmUp)
	m := l.mark()
	r.run(50)
	r.expectHears(l, m, fA)
}

func TestMembership(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{MaxSpeakers: 2})
	r.join("a", engine.Speaker, fA, 0.25)
	r.join("b", engine.Moderator, fB, 0.25)
	if _, err := r.room.Join("c", engine.ParticipantConfig{Role: engine.Speaker}); !errors.Is(err, engine.ErrStageFull) {
		t.Errorf("third speaker on a stage of 2: %v", err)
	}
	l := r.join("l", engine.Listener, 0, 0)
	if err := l.p.SetRole(engine.Speaker); !errors.Is(err, engine.ErrStageFull) {
		t.Errorf("promotion onto a full stage: %v", err)
	}
	if _, err := r.room.Join("a", engine.ParticipantConfig{}); !errors.Is(err, engine.ErrParticipantExists) {
		t.Errorf("duplicate id: %v", err)
	}
	if _, err := r.room.Join("", engine.ParticipantConfig{}); !errors.Is(err, engine.ErrBadID) {
		t.Errorf("empty id: %v", err)
	}
	if _, err := r.room.Join("x", engine.ParticipantConfig{Role: engine.Role(9)}); !errors.Is(err, engine.ErrBadRole) {
		t.Errorf("bad role: %v", err)
	}
	if _, err := r.eng.NewRoom("test", engine.RoomConfig{}); !errors.Is(err, engine.ErrRoomExists) {
		t.Errorf("duplicate room: %v", err)
	}
	r.run(10)
	if err := r.room.Kick("b", "rude"); err != nil {
		t.Fatal(err)
	}
	if err := r.room.Kick("b", "again"); !errors.Is(err, engine.ErrNoParticipant) {
		t.Errorf("kick twice: %v", err)
	}
	if err := l.p.SetRole(engine.Speaker); err != nil {
		t.Errorf("promotion after a speaker left: %v", err)
	}
	r.run(10)
	if n := r.room.Len(); n != 2 {
		t.Errorf("room has %d members, want 2", n)
	}
	if err := r.eng.CloseRoom("test"); err != nil {
		t.Fatal(err)
	}
	if err := r.eng.CloseRoom("test"); !errors.Is(err, engine.ErrNoRoom) {
		t.Errorf("close twice: %v", err)
	}
	if err := l.p.WriteRTP(l.rtp([]byte{0xfc, 1, 2})); !errors.Is(err, engine.ErrLeft) {
		t.Errorf("write after the room closed: %v", err)
	}
	if _, err := r.room.Join("late", engine.ParticipantConfig{}); !errors.Is(err, engine.ErrRoomClosed) {
		t.Errorf("join a closed room: %v", err)
	}
	r.run(2) // ticking with a closed room is harmless
}

func TestTickRunsEveryRoomOnce(t *testing.T) {
	clock := &fakeclock.Clock{}
	eng := engine.New(engine.Config{Now: clock.Now, Workers: 3})
	defer eng.Close()
	const rooms = 17
	for i := range rooms {
		if _, err := eng.NewRoom(string(rune('A'+i)), engine.RoomConfig{}); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		eng.Tick()
	}
	for _, r := range eng.Rooms() {
		if got := r.Counters().RoomTicks; got != 10 {
			t.Errorf("room %s ticked %d times, want 10", r.ID(), got)
		}
	}
	if s := eng.Stats(); s.Ticks != 10 || s.Rooms != rooms || s.RoomTicks != 10*rooms {
		t.Errorf("engine stats %+v", s)
	}
}

// TestConcurrentUse drives a room from many goroutines at once, for the
// race detector: packets, role changes, mutes and leaves while it ticks.
func TestConcurrentUse(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{})
	var speakers []*client
	for i, f := range []float64{fA, fB, fC} {
		speakers = append(speakers, r.join(string(rune('a'+i)), engine.Speaker, f, 0.25))
	}
	l := r.join("l", engine.Listener, 0, 0)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, s := range speakers {
		// Each client's packets come from its own goroutine.
		wg.Add(1)
		go func(c *client) {
			defer wg.Done()
			enc := c.enc
			var pcm [codec.FrameSamples]int16
			var out [1500]byte
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				signal.Tone(pcm[:], c.freq, c.amp*32767, i*codec.FrameSamples)
				n, _ := enc.Encode(pcm[:], out[:])
				_ = c.p.WriteRTP(c.rtp(out[:n]))
			}
		}(s)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			p := speakers[i%len(speakers)].p
			_ = p.SetRole(engine.Role(i % 3))
			p.SetMuted(i%2 == 0)
			p.SetGainDB(float64(i % 7))
			_ = p.Stats()
			_ = r.room.Participants()
		}
	}()
	for range 100 {
		r.clock.Advance(engine.TickInterval)
		r.eng.Tick()
	}
	close(stop)
	wg.Wait()
	speakers[0].p.Leave()
	r.eng.Tick()
	l.expectContinuous()
}

// TestHandQueueAndLeaveReasons: hands queue in raise order, a promotion
// lowers the promoted hand with its own event (after the role change), and
// each way out of a room carries its own reason.
func TestHandQueueAndLeaveReasons(t *testing.T) {
	var events []string
	var evMu sync.Mutex
	r := newTestRoom(t, engine.RoomConfig{OnEvent: func(e engine.Event) {
		evMu.Lock()
		defer evMu.Unlock()
		s := string(e.Kind) + " " + e.Participant
		switch e.Kind {
		case engine.EventHand:
			s += fmt.Sprint(" ", e.HandRaised)
		case engine.EventLeft:
			s += " " + e.Reason
		}
		events = append(events, s)
	}})
	var ps = map[string]*engine.Participant{}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		ps[id] = r.join(id, engine.Listener, 0, 0).p
	}
	ps["c"].RaiseHand()
	ps["a"].RaiseHand()
	ps["b"].RaiseHand()
	ps["c"].LowerHand()
	ps["c"].RaiseHand() // back of the queue
	if got := r.room.Snapshot().Hands; fmt.Sprint(got) != "[a b c]" {
		t.Errorf("hand queue %v, want [a b c]", got)
	}
	if st := ps["b"].Stats(); st.HandSeq <= ps["a"].Stats().HandSeq || !st.HandRaised {
		t.Errorf("b's raise number %d is not after a's %d", st.HandSeq, ps["a"].Stats().HandSeq)
	}
	evMu.Lock()
	events = events[:0]
	evMu.Unlock()

	if err := ps["a"].SetRole(engine.Speaker); err != nil {
		t.Fatal(err)
	}
	if ps["a"].HandRaised() || ps["a"].Stats().HandSeq != 0 {
		t.Error("the promoted listener's hand is still up")
	}
	if got := r.room.Snapshot().Hands; fmt.Sprint(got) != "[b c]" {
		t.Errorf("hand queue after promoting a: %v, want [b c]", got)
	}
	ps["a"].Leave()
	if err := r.room.Kick("b", engine.ReasonKicked); err != nil {
		t.Fatal(err)
	}
	if err := r.room.Kick("c", engine.ReasonTimeout); err != nil {
		t.Fatal(err)
	}
	if err := r.eng.CloseRoom("test"); err != nil {
		t.Fatal(err)
	}
	evMu.Lock()
	defer evMu.Unlock()
	want := []string{"role_changed a", "hand a false", "left a left", "left b kicked", "left c timeout"}
	if fmt.Sprint(events[:len(want)]) != fmt.Sprint(want) {
		t.Errorf("events %q, want %q first", events, want)
	}
	for _, e := range events[len(want):] {
		if !strings.HasSuffix(e, " room_closed") {
			t.Errorf("event %q after the room closed, want reason room_closed", e)
		}
	}
	if len(events) != len(want)+2 {
		t.Errorf("%d events, want %d", len(events), len(want)+2)
	}
}
