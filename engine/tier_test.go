package engine_test

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/red"
)

// runReporting sends the same reception report from c once per simulated
// second while the room runs for the given seconds.
func (r *room) runReporting(c *client, rep engine.Reception, seconds int) {
	for range seconds {
		c.p.ReportReception(rep)
		r.run(50)
	}
}

func TestTiersProtectFastAndRelaxSlowly(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{})
	r.join("a", engine.Speaker, fA, 0.25)
	l := r.join("l", engine.Listener, 0, 0)
	r.run(warmUp)
	clean := engine.Reception{FractionLost: 0}
	r.runReporting(l, clean, 2)
	if tier := l.p.Tier(); tier != 0 {
		t.Fatalf("clean link on tier %d", tier)
	}

	// Loss starts: one report is enough to protect. Without RED, the low
	// tier (whose protection is RED) would not help: the listener stays on
	// mid, whose FEC does.
	if tier, changed := l.p.ReportReception(engine.Reception{FractionLost: 0.05}); tier != 1 || !changed {
		t.Fatalf("5%% loss: tier %d (changed %v), want 1 at once", tier, changed)
	}
	if tier, _ := l.p.ReportReception(engine.Reception{FractionLost: 0.15}); tier != 1 {
		t.Fatalf("15%% loss without RED: tier %d, want mid", tier)
	}
	r.run(50)
	m := l.mark()
	// The loss ends: the tier holds through 10 s of clean reports, then
	// returns to hi.
	back := 0
	for s := 1; s <= 15 && back == 0; s++ {
		l.p.ReportReception(clean)
		r.run(50)
		if tier := l.p.Tier(); tier != 1 {
			back = s
			if tier != 0 {
				t.Errorf("relaxed to tier %d, want hi", tier)
			}
		}
	}
	if back < 10 || back > 11 {
		t.Errorf("back on hi %d s after the loss ended, want 10 to 11", back)
	}
	// A calm spell with some loss relaxes only as far as that loss allows.
	l.p.ReportReception(engine.Reception{FractionLost: 0.15})
	for s := 0; s < 11; s++ {
		loss := 0.0
		if s == 4 {
			loss = 0.03
		}
		l.p.ReportReception(engine.Reception{FractionLost: loss})
		r.run(50)
	}
	if tier := l.p.Tier(); tier != 1 {
		t.Errorf("after a calm spell with one 3%% report: tier %d, want mid", tier)
	}
	// Through every switch the stream stayed continuous and audible.
	l.expectContinuous()
	r.expectHears(l, m, fA)
	if sw := r.room.Counters().TierSwitches; sw != 3 {
		t.Errorf("%d tier switches, want 3", sw)
	}
}

func TestOnlyREDTakersGoToTheREDTier(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{})
	r.join("a", engine.Speaker, fA, 0.25)
	plain := r.join("plain", engine.Listener, 0, 0)
	redL := &redListener{}
	p, err := r.room.Join("red", engine.ParticipantConfig{Sink: redL, REDPayloadType: 63})
	if err != nil {
		t.Fatal(err)
	}
	r.run(warmUp)
	heavy := engine.Reception{FractionLost: 0.2}
	if tier, _ := p.ReportReception(heavy); tier != 2 {
		t.Errorf("a RED taker at 20%% loss: tier %d, want low", tier)
	}
	if tier, _ := plain.p.ReportReception(heavy); tier != 1 {
		t.Errorf("a plain listener at 20%% loss: tier %d, want mid", tier)
	}
}

func TestSharedMixEncodedOncePerUsedTier(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{})
	r.join("a", engine.Speaker, fA, 0.25)
	var ls []*client
	for _, id := range []string{"l0", "l1", "l2", "l3"} {
		ls = append(ls, r.join(id, engine.Listener, 0, 0))
	}
	r.run(warmUp)
	encodes := func(ticks int) uint64 {
		before := r.room.Counters().Encodes
		r.run(ticks)
		return r.room.Counters().Encodes - before
	}
	// One shared encode for hi a tick; a's private mix-minus, which holds
	// no other voice, at most once in 10 ticks (TestSoloTalkerSkipsSilentEncodes).
	if n := encodes(10); n < 10 || n > 11 {
		t.Errorf("all on hi: %d encodes in 10 ticks, want 10 (+1)", n)
	}
	ls[1].p.ReportReception(engine.Reception{FractionLost: 0.05})
	ls[2].p.ReportReception(engine.Reception{FractionLost: 0.5})
	if n := encodes(10); n < 20 || n > 21 {
		t.Errorf("hi and mid in use: %d encodes in 10 ticks, want 20 (+1)", n)
	}
	m := ls[2].mark()
	r.run(50)
	r.expectHears(ls[2], m, fA)
	for _, l := range ls {
		l.expectContinuous()
	}
}

func TestSpeakerEncoderFollowsItsTier(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{})
	a := r.join("a", engine.Speaker, fA, 0.25)
	b := r.join("b", engine.Speaker, fB, 0.25)
	r.run(warmUp)
	// b's link turns bad: its own mix-minus moves to the mid tier's
	// settings (24 kbps wideband with FEC), a's stays fullband.
	b.p.ReportReception(engine.Reception{FractionLost: 0.2})
	r.run(25)
	if toc := lastTOC(t, b); toc.Bandwidth > codec.Wideband {
		t.Errorf("b on the low tier still gets %v", toc.Bandwidth)
	}
	if toc := lastTOC(t, a); toc.Bandwidth != codec.Fullband {
		t.Errorf("a on hi gets %v", toc.Bandwidth)
	}
	m := b.mark()
	r.run(50)
	r.expectHears(b, m, fA)
	b.expectContinuous()
}

// lastTOC parses the TOC of the last packet a client received.
func lastTOC(t *testing.T, c *client) codec.TOC {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	toc, err := codec.ParseTOC(c.lastPayload)
	if err != nil {
		t.Fatalf("%s: %v", c.p.ID(), err)
	}
	return toc
}

// redListener joins a listener that takes RED and keeps its packets.
type redListener struct {
	mu      sync.Mutex
	p       *engine.Participant
	packets []rtp.Packet
}

func (l *redListener) WriteRTP(header, payload []byte) error {
	var pkt rtp.Packet
	if err := pkt.Unmarshal(append(append([]byte(nil), header...), payload...)); err != nil {
		return err
	}
	l.mu.Lock()
	l.packets = append(l.packets, pkt)
	l.mu.Unlock()
	return nil
}

func TestREDOutputCarriesThePreviousPacket(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{})
	r.join("a", engine.Speaker, fA, 0.25)
	l, p := joinREDListener(t, r)
	r.run(warmUp)
	p.ReportReception(engine.Reception{FractionLost: 0.3}) // the low tier: RED distance 1
	r.run(20)
	l.mu.Lock()
	defer l.mu.Unlock()
	pkts := l.packets[len(l.packets)-10:]
	dec, _ := codec.NewDecoder()
	pcm := make([]int16, codec.MaxFrameSamples)
	for i, pkt := range pkts {
		if pkt.PayloadType != 63 {
			t.Fatalf("payload type %d, want RED 63", pkt.PayloadType)
		}
		pt, primary, blocks, err := red.Parse(pkt.Payload, nil)
		if err != nil || pt != 111 {
			t.Fatalf("packet %d: pt %d, %v", i, pt, err)
		}
		if _, err := dec.Decode(primary, pcm); err != nil {
			t.Fatalf("primary does not decode: %v", err)
		}
		if i == 0 {
			continue
		}
		if len(blocks) != 1 || blocks[0].TSOffset != codec.FrameSamples {
			t.Fatalf("packet %d: %d redundant blocks", i, len(blocks))
		}
		_, prevPrimary, _, _ := red.Parse(pkts[i-1].Payload, nil)
		if !bytes.Equal(blocks[0].Data, prevPrimary) {
			t.Fatalf("packet %d: the redundant block is not the previous packet", i)
		}
	}
}

func TestNACKIsAnsweredFromHistory(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{NACKRate: 5})
	r.join("a", engine.Speaker, fA, 0.25)
	l := &redListener{}
	p, err := r.room.Join("l", engine.ParticipantConfig{Sink: l})
	if err != nil {
		t.Fatal(err)
	}
	r.run(warmUp)
	l.mu.Lock()
	want := l.packets[len(l.packets)-3]
	l.mu.Unlock()
	if n := p.Retransmit([]uint16{want.SequenceNumber}); n != 1 {
		t.Fatalf("retransmitted %d", n)
	}
	l.mu.Lock()
	got := l.packets[len(l.packets)-1]
	l.mu.Unlock()
	if got.SequenceNumber != want.SequenceNumber || got.Timestamp != want.Timestamp || !bytes.Equal(got.Payload, want.Payload) {
		t.Errorf("retransmission differs: seq %d ts %d, want seq %d ts %d", got.SequenceNumber, got.Timestamp, want.SequenceNumber, want.Timestamp)
	}
	// Too old: no longer in the history.
	l.mu.Lock()
	old := l.packets[0].SequenceNumber
	l.mu.Unlock()
	if n := p.Retransmit([]uint16{old}); n != 0 {
		t.Errorf("a packet %d ticks old was retransmitted", warmUp)
	}
	// The rate bounds a burst of NACKs.
	var seqs []uint16
	l.mu.Lock()
	for _, pkt := range l.packets[len(l.packets)-10:] {
		seqs = append(seqs, pkt.SequenceNumber)
	}
	l.mu.Unlock()
	if n := p.Retransmit(seqs); n > 3 {
		t.Errorf("%d retransmissions at once with a rate of 5 a second", n)
	}
	// A round trip too long for a retransmission to arrive in time.
	r.clock.Advance(time.Second)
	p.ReportReception(engine.Reception{RTT: 300 * time.Millisecond})
	if n := p.Retransmit(seqs[len(seqs)-1:]); n != 0 {
		t.Errorf("retransmitted with a 300 ms round trip")
	}
	if c := r.room.Counters(); c.Retransmitted == 0 || c.NACKsRefused == 0 {
		t.Errorf("counters %+v", c)
	}
}

func TestREDInputFillsLosses(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{})
	r.join("a", engine.Speaker, fA, 0.25)
	l := r.join("l", engine.Listener, 0, 0)
	// s sends RED: each packet carries the previous one; every fourth
	// packet is lost on the way.
	s, err := r.room.Join("s", engine.ParticipantConfig{Role: engine.Speaker, REDPayloadType: 63})
	if err != nil {
		t.Fatal(err)
	}
	enc, _ := codec.NewEncoder(codec.EncoderConfig{Bitrate: 64000})
	var pcm [codec.FrameSamples]int16
	var prev []byte
	seq, ts := uint16(500), uint32(90000)
	for i := range 150 {
		signal.Tone(pcm[:], fB, 0.25*32767, i*codec.FrameSamples)
		buf := make([]byte, codec.MaxPacketBytes)
		n, _ := enc.Encode(pcm[:], buf)
		frame := buf[:n]
		var blocks []red.Block
		if prev != nil {
			blocks = append(blocks, red.Block{PayloadType: 111, TSOffset: codec.FrameSamples, Data: prev})
		}
		payload := red.Append(nil, 111, frame, blocks...)
		pkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 63, SequenceNumber: seq, Timestamp: ts, SSRC: 7}, Payload: payload}).Marshal()
		if i%4 != 3 {
			if err := s.WriteRTP(pkt); err != nil {
				t.Fatalf("RED packet refused: %v", err)
			}
		}
		prev, seq, ts = frame, seq+1, ts+codec.FrameSamples
		for _, c := range r.order {
			c.speak()
		}
		r.clock.Advance(engine.TickInterval)
		r.eng.Tick()
		if i == 50 {
			l.mu.Lock()
			l.heard = l.heard[:0]
			l.mu.Unlock()
		}
	}
	st := s.Stats().Jitter
	if st.ConcealedSamples != 0 {
		t.Errorf("losses were concealed, not filled from RED: %+v", st)
	}
	if c := r.room.Counters(); c.REDRecovered < 30 {
		t.Errorf("%d packets recovered from RED, want about 37", c.REDRecovered)
	}
	r.expectHears(l, 0, fA, fB)
}

// A tier whose packets are large keeps its RED within 1,200 bytes of
// payload: the blocks that would take it further are left out, the oldest
// first, and the primary always goes. (The plain RTP transport sends with
// the don't-fragment bit: a longer packet might not pass at all.)
func TestREDStaysWithin1200Bytes(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{Tiers: []engine.Tier{{
		Name: "loud", RED: 2, Encoder: codec.EncoderConfig{Bitrate: 160000},
	}}})
	r.join("a", engine.Speaker, fA, 0.25)
	l, _ := joinREDListener(t, r)
	r.run(warmUp + 20)
	l.mu.Lock()
	defer l.mu.Unlock()
	dec, _ := codec.NewDecoder()
	pcm := make([]int16, codec.MaxFrameSamples)
	var primaries [][]byte
	trimmed := 0
	for i, pkt := range l.packets {
		if len(pkt.Payload) > 1200 {
			t.Fatalf("packet %d: a RED payload of %d bytes", i, len(pkt.Payload))
		}
		_, primary, blocks, err := red.Parse(pkt.Payload, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dec.Decode(primary, pcm); err != nil {
			t.Fatalf("packet %d: the primary does not decode: %v", i, err)
		}
		primaries = append(primaries, primary)
		if i < warmUp {
			continue
		}
		// What fits, newest first: the previous packet, then the one before.
		var want [][]byte
		size := 1 + len(primary)
		for d := 1; d <= 2; d++ {
			if size += 4 + len(primaries[i-d]); size > 1200 {
				break
			}
			want = append([][]byte{primaries[i-d]}, want...)
		}
		if len(want) < 2 {
			trimmed++
		}
		if len(blocks) != len(want) {
			t.Fatalf("packet %d (%d bytes of primary): %d redundant blocks, want %d", i, len(primary), len(blocks), len(want))
		}
		for k := range want {
			if !bytes.Equal(blocks[k].Data, want[k]) {
				t.Fatalf("packet %d: redundant block %d is not the packet %d before", i, k, len(want)-k)
			}
		}
	}
	t.Logf("%d of %d packets kept fewer than two blocks", trimmed, len(l.packets)-warmUp)
	if trimmed == 0 {
		t.Fatal("no packet needed trimming: the test's bitrate is too low to show the bound")
	}
}

// joinREDListener joins a listener taking RED with payload type 63.
func joinREDListener(t *testing.T, r *room) (*redListener, *engine.Participant) {
	t.Helper()
	l := &redListener{}
	p, err := r.room.Join("l", engine.ParticipantConfig{Sink: l, REDPayloadType: 63})
	if err != nil {
		t.Fatal(err)
	}
	l.p = p
	return l, p
}
