package session_test

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/feedback"
	"github.com/handsup-audio/handsup/internal/fakeclock"
	"github.com/handsup-audio/handsup/session"
)

// memLink is a Link in memory: it records what the session sends.
type memLink struct {
	mu      sync.Mutex
	rtp     [][]byte
	rtcp    [][]byte
	recv    session.Receiver
	closed  bool
	flushes int
}

func (l *memLink) WriteRTP(header, payload []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rtp = append(l.rtp, append(append([]byte(nil), header...), payload...))
	return nil
}

func (l *memLink) WriteRTCP(pkt []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rtcp = append(l.rtcp, append([]byte(nil), pkt...))
	return nil
}

func (l *memLink) Bind(r session.Receiver) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recv = r
}

func (l *memLink) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return nil
}

func (l *memLink) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushes++
}

func (l *memLink) bound() session.Receiver {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recv
}

func (l *memLink) state() (rtpN, rtcpN, flushes int, closed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.rtp), len(l.rtcp), l.flushes, l.closed
}

// world is an engine on a hand-driven clock with a session manager.
type world struct {
	t    *testing.T
	clk  *fakeclock.Clock
	eng  *engine.Engine
	mgr  *session.Manager
	room *session.Room
}

func newWorld(t *testing.T, cfg session.Config) *world {
	w := &world{t: t, clk: fakeclock.New(time.Unix(1_700_000_000, 0))}
	w.eng = engine.New(engine.Config{Workers: 1, Now: w.clk.Now})
	t.Cleanup(w.eng.Close)
	cfg.Now = w.clk.Now
	w.mgr = session.New(w.eng, cfg)
	r, err := w.mgr.NewRoom("r", engine.RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w.room = r
	return w
}

func (w *world) join(id string, role engine.Role) (*session.Member, *memLink) {
	w.t.Helper()
	l := &memLink{}
	m, err := w.room.Join(id, engine.ParticipantConfig{Role: role}, l)
	if err != nil {
		w.t.Fatal(err)
	}
	return m, l
}

// talker sends a 440 Hz tone as Opus/RTP, one packet per call.
type talker struct {
	enc   *codec.Encoder
	pcm   [codec.FrameSamples]int16
	buf   [codec.MaxPacketBytes]byte
	seq   uint16
	ts    uint32
	phase float64
}

func newTalker(t *testing.T) *talker {
	enc, err := codec.NewEncoder(codec.EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &talker{enc: enc}
}

func (k *talker) next(t *testing.T) []byte {
	for i := range k.pcm {
		k.pcm[i] = int16(8000 * math.Sin(k.phase))
		k.phase += 2 * math.Pi * 440 / codec.SampleRate
	}
	n, err := k.enc.Encode(k.pcm[:], k.buf[:])
	if err != nil {
		t.Fatal(err)
	}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: k.seq,
		Timestamp: k.ts, SSRC: 0x5eed}, Payload: k.buf[:n]}
	k.seq++
	k.ts += codec.FrameSamples
	b, err := pkt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func marshal(t *testing.T, pkts ...rtcp.Packet) []byte {
	t.Helper()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJoinBindsTheLink: the link becomes the participant's sink and the
// member its receiver; a speaker's RTP reaches the room's mix and a
// listener hears it through its link.
func TestJoinBindsTheLink(t *testing.T) {
	w := newWorld(t, session.Config{})
	spk, sl := w.join("s", engine.Speaker)
	_, ll := w.join("l", engine.Listener)
	if sl.bound() != spk {
		t.Fatal("the speaker's link is not bound to its member")
	}
	k := newTalker(t)
	for range 50 {
		sl.bound().ReceiveRTP(k.next(t))
		w.clk.Advance(engine.TickInterval)
		w.eng.Tick()
	}
	if c := w.room.Counters(); c.PacketsIn != 50 {
		t.Errorf("the engine got %d packets, want 50", c.PacketsIn)
	}
	if n, _, _, _ := ll.state(); n < 40 {
		t.Errorf("the listener's link got %d packets in 50 ticks", n)
	}
	if _, ok := spk.Uplink(); !ok {
		t.Error("a speaker has no RTCP side")
	}
	if got, ok := w.room.Member("s"); !ok || got != spk {
		t.Error("Member does not find the speaker")
	}
	if ms := w.room.Members(); len(ms) != 2 || ms[0].ID() != "l" || ms[1].ID() != "s" {
		t.Errorf("Members = %v", ms)
	}
}

// TestReceiverReportsMoveTiers: a listener's RR reporting heavy loss moves
// it off the top tier; the tracker keeps what it said.
func TestReceiverReportsMoveTiers(t *testing.T) {
	w := newWorld(t, session.Config{})
	lis, ll := w.join("l", engine.Listener)
	rr := &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{
		SSRC: lis.Participant().SSRC(), FractionLost: 64, LastSequenceNumber: 100}}}
	ll.bound().ReceiveRTCP(marshal(t, rr))
	if tier := lis.Participant().Tier(); tier == 0 {
		t.Error("25% reported loss left the listener on the top tier")
	}
	rec := lis.Reception()
	if rec.Reports != 1 || math.Abs(rec.FractionLost-0.25) > 0.01 {
		t.Errorf("reception %+v, want 1 report of 25%% loss", rec)
	}
	if st := w.mgr.Stats(); st.RTCPReceived != 1 || st.RTCPMalformed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestNACKsAreAnsweredAndFlushed: a listener's NACK for a packet it was
// sent brings that packet again, and the link is flushed at once.
func TestNACKsAreAnsweredAndFlushed(t *testing.T) {
	w := newWorld(t, session.Config{})
	_, sl := w.join("s", engine.Speaker)
	lis, ll := w.join("l", engine.Listener)
	k := newTalker(t)
	for range 30 {
		sl.bound().ReceiveRTP(k.next(t))
		w.clk.Advance(engine.TickInterval)
		w.eng.Tick()
	}
	sent, _, _, _ := ll.state()
	if sent == 0 {
		t.Fatal("the listener got nothing")
	}
	var first rtp.Packet
	ll.mu.Lock()
	err := first.Unmarshal(ll.rtp[sent-1])
	ll.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	nack := &rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: lis.Participant().SSRC(),
		Nacks: []rtcp.NackPair{{PacketID: first.SequenceNumber}}}
	ll.bound().ReceiveRTCP(marshal(t, nack))
	after, _, flushes, _ := ll.state()
	if after != sent+1 || flushes != 1 {
		t.Errorf("after the NACK: %d packets (was %d), %d flushes; want one more packet and one flush", after, sent, flushes)
	}
	ll.mu.Lock()
	again := ll.rtp[after-1]
	ll.mu.Unlock()
	if string(again) != string(ll.rtp[sent-1]) {
		t.Error("the retransmission differs from the original")
	}
	if st := w.mgr.Stats(); st.NACKsReceived != 1 {
		t.Errorf("stats %+v, want 1 NACK", st)
	}
}

// TestMalformedRTCPIsCounted: garbage from a member is counted and
// changes nothing.
func TestMalformedRTCPIsCounted(t *testing.T) {
	w := newWorld(t, session.Config{})
	lis, ll := w.join("l", engine.Listener)
	for _, pkt := range [][]byte{{0x80, 201}, {0x80, 201, 0, 9, 1, 2, 3, 4}, make([]byte, 40)} {
		ll.bound().ReceiveRTCP(pkt)
	}
	if st := w.mgr.Stats(); st.RTCPMalformed != 3 || st.RTCPReceived != 0 {
		t.Errorf("stats %+v, want 3 malformed", st)
	}
	if lis.Reception().Reports != 0 || lis.Participant().Tier() != 0 {
		t.Error("a malformed packet changed the member")
	}
}

// TestSenderReportsAndRTT: every stream gets a sender report within the
// interval, and a receiver report answering one yields the round trip.
func TestSenderReportsAndRTT(t *testing.T) {
	w := newWorld(t, session.Config{SRInterval: time.Second})
	var links []*memLink
	var members []*session.Member
	for i := range 10 {
		m, l := w.join(fmt.Sprint("l", i), engine.Listener)
		members, links = append(members, m), append(links, l)
	}
	for range 1 + int(time.Second/session.ReportPeriod) {
		w.mgr.SendReports(w.clk.Now())
		w.clk.Advance(session.ReportPeriod)
	}
	for i, l := range links {
		if _, n, _, _ := l.state(); n != 1 {
			t.Errorf("listener %d got %d sender reports in one interval, want 1", i, n)
		}
	}
	l := links[3]
	l.mu.Lock()
	pkts, err := rtcp.Unmarshal(l.rtcp[0])
	l.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	sr, ok := pkts[0].(*rtcp.SenderReport)
	if !ok || sr.SSRC != members[3].Participant().SSRC() {
		t.Fatalf("first packet %T, want the listener's SR", pkts[0])
	}
	// The report says it held the SR for all but 40 ms of the time since
	// it was sent (NTP's middle 32 bits count 1/65536 s).
	lsr := uint32(sr.NTPTime >> 16)
	held := feedback.NTPMiddle(feedback.NTPTime(w.clk.Now())) - lsr - uint32(40*time.Millisecond*65536/time.Second)
	rr := &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: sr.SSRC,
		LastSenderReport: lsr, Delay: held}}}
	l.bound().ReceiveRTCP(marshal(t, rr))
	rtt := members[3].Reception().RTT
	if d := rtt - 40*time.Millisecond; d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("RTT %v, want 40ms", rtt)
	}
	if st := w.mgr.Stats(); st.RTCPSent != 10 {
		t.Errorf("stats %+v, want 10 sent", st)
	}
}

// TestRoleChangesFollowTheRTCPSide: promotion starts the RTCP side of the
// participant's incoming stream, demotion stops it.
func TestRoleChangesFollowTheRTCPSide(t *testing.T) {
	w := newWorld(t, session.Config{})
	m, _ := w.join("l", engine.Listener)
	if _, ok := m.Uplink(); ok {
		t.Error("a listener has an RTCP side for its uplink")
	}
	if err := m.Participant().SetRole(engine.Speaker); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Uplink(); !ok {
		t.Error("promotion did not start the RTCP side")
	}
	if err := m.Participant().SetRole(engine.Listener); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Uplink(); ok {
		t.Error("demotion did not stop the RTCP side")
	}
}

// TestLeavingClosesTheLink: leave, kick and the room's end each unbind
// and close the member's link, and forget the member.
func TestLeavingClosesTheLink(t *testing.T) {
	w := newWorld(t, session.Config{})
	a, al := w.join("a", engine.Speaker)
	_, bl := w.join("b", engine.Listener)
	_, cl := w.join("c", engine.Listener)
	a.Leave()
	if err := w.room.Kick("b", "kicked"); err != nil {
		t.Fatal(err)
	}
	for name, l := range map[string]*memLink{"left": al, "kicked": bl} {
		if _, _, _, closed := l.state(); !closed || l.bound() != nil {
			t.Errorf("%s: link closed %v, still bound %v", name, closed, l.bound() != nil)
		}
	}
	if _, ok := w.room.Member("a"); ok {
		t.Error("a leaver is still a member")
	}
	if _, ok := a.Uplink(); ok {
		t.Error("a leaver's RTCP side still runs")
	}
	if _, _, _, closed := cl.state(); closed {
		t.Error("another member's link was closed")
	}
	if err := w.mgr.CloseRoom("r"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, closed := cl.state(); !closed {
		t.Error("closing the room left a link open")
	}
	if _, ok := w.mgr.Room("r"); ok {
		t.Error("a closed room is still listed")
	}
	if err := w.mgr.CloseRoom("r"); !errors.Is(err, engine.ErrNoRoom) {
		t.Errorf("closing it again: %v, want ErrNoRoom", err)
	}
}

// TestJoinRefusals: a taken id is refused without touching the new link.
func TestJoinRefusals(t *testing.T) {
	w := newWorld(t, session.Config{})
	w.join("a", engine.Listener)
	l := &memLink{}
	if _, err := w.room.Join("a", engine.ParticipantConfig{}, l); !errors.Is(err, engine.ErrParticipantExists) {
		t.Errorf("duplicate id: %v", err)
	}
	if _, err := w.room.Join("", engine.ParticipantConfig{}, l); err == nil {
		t.Error("an empty id joined")
	}
	if _, _, _, closed := l.state(); closed || l.bound() != nil {
		t.Error("a refused join touched the link")
	}
	if _, err := w.room.Join("x", engine.ParticipantConfig{}, nil); err == nil {
		t.Error("a nil link joined")
	}
	if n := len(w.room.Members()); n != 1 {
		t.Errorf("%d members, want 1", n)
	}
}

// TestConcurrentMembers: joins, leaves, role changes, RTCP and sender
// reports at once, from many goroutines (run with -race).
func TestConcurrentMembers(t *testing.T) {
	w := newWorld(t, session.Config{SRInterval: 100 * time.Millisecond})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				id := fmt.Sprint("p", g, "-", i)
				l := &memLink{}
				m, err := w.room.Join(id, engine.ParticipantConfig{}, l)
				if err != nil {
					t.Error(err)
					return
				}
				_ = m.Participant().SetRole(engine.Speaker)
				if r := l.bound(); r != nil {
					r.ReceiveRTCP([]byte{0x80, 201, 0, 1, 0, 0, 0, 1})
				}
				if i%2 == 0 {
					m.Leave()
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			w.clk.Advance(20 * time.Millisecond)
			w.mgr.SendReports(w.clk.Now())
			w.eng.Tick()
		}
	}()
	wg.Wait()
	if n := len(w.room.Members()); n != 4*12 {
		t.Errorf("%d members, want %d", n, 4*12)
	}
	if st := w.mgr.Stats(); st.RTCPReceived != 100 {
		t.Errorf("stats %+v, want 100 RTCP packets received", st)
	}
}
