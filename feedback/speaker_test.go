package feedback

import (
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

const speakerSSRC = 0x5EA4E401

// rtcpSink collects what a SpeakerSession writes, parsed with pion.
type rtcpSink struct {
	mu    sync.Mutex
	pkts  []rtcp.Packet
	bad   int
	count int
}

func (s *rtcpSink) write(b []byte) error {
	pkts, err := rtcp.Unmarshal(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	if err != nil {
		s.bad++
		return nil
	}
	s.pkts = append(s.pkts, pkts...)
	return nil
}

func (s *rtcpSink) snapshot() []rtcp.Packet {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.pkts)
}

// nacked is every sequence number NACKed for ssrc so far, and the sender
// SSRCs used.
func nacked(pkts []rtcp.Packet, ssrc uint32) (seqs []uint16, senders []uint32) {
	for _, p := range pkts {
		if n, ok := p.(*rtcp.TransportLayerNack); ok && n.MediaSSRC == ssrc {
			for _, pair := range n.Nacks {
				seqs = append(seqs, pair.PacketList()...)
			}
			senders = append(senders, n.SenderSSRC)
		}
	}
	slices.Sort(seqs)
	return slices.Compact(seqs), senders
}

func receiverReports(pkts []rtcp.Packet, ssrc uint32) (out []*rtcp.ReceiverReport) {
	for _, p := range pkts {
		if rr, ok := p.(*rtcp.ReceiverReport); ok && len(rr.Reports) == 1 && rr.Reports[0].SSRC == ssrc {
			out = append(out, rr)
		}
	}
	return out
}

// waitFor polls cond every 5 ms for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func opusPacket(t testing.TB, ssrc uint32, seq uint16, ts uint32) []byte {
	p := rtp.Packet{
		Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc},
		// An Opus SILK 20 ms frame's TOC and a few bytes: the session does
		// not decode.
		Payload: []byte{0x78, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07},
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// feed sends packets first..last of a 20 ms stream, skipping lost, 1 ms
// apart (fast, but the jitter arithmetic does not mind).
func feed(t *testing.T, s *SpeakerSession, ssrc uint32, first, last uint16, lost ...uint16) int {
	sent := 0
	for seq := first; seq != last+1; seq++ {
		if slices.Contains(lost, seq) {
			continue
		}
		s.OnRTP(opusPacket(t, ssrc, seq, uint32(seq)*960))
		sent++
	}
	return sent
}

func TestSpeakerSessionNACKsAndReports(t *testing.T) {
	sink := &rtcpSink{}
	const local = 0x10CA1
	s, err := NewSpeakerSession(SpeakerConfig{
		LocalSSRC:      local,
		WriteRTCP:      sink.write,
		ReportInterval: 30 * time.Millisecond,
		NACKInterval:   10 * time.Millisecond,
		RTT:            func() time.Duration { return 42 * time.Millisecond },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	lost := []uint16{65534, 3, 4, 20}
	sent := feed(t, s, speakerSSRC, 65530, 40, lost...) // wraps past 65535

	// NACKs go out when the caller polls, at most once per NACKInterval.
	now := time.Now()
	s.Poll(now)
	if seqs, _ := nacked(sink.snapshot(), speakerSSRC); !slices.Equal(seqs, []uint16{3, 4, 20, 65534}) {
		t.Fatalf("NACKed %v after the first poll, want every gap", seqs)
	}
	s.Poll(now.Add(5 * time.Millisecond)) // within the interval: nothing
	if n := s.Stats().NACKedPackets; n != uint64(len(lost)) {
		t.Fatalf("NACKed %d sequence numbers after a poll within the interval, want %d", n, len(lost))
	}
	waitFor(t, "a receiver report counting the loss", func() bool {
		for _, rr := range receiverReports(sink.snapshot(), speakerSSRC) {
			if rr.Reports[0].TotalLost == uint32(len(lost)) {
				return true
			}
		}
		return false
	})
	pkts := sink.snapshot()
	_, senders := nacked(pkts, speakerSSRC)
	for _, ssrc := range senders {
		if ssrc != local {
			t.Errorf("NACK sent from SSRC %#x, want %#x", ssrc, local)
		}
	}
	rrs := receiverReports(pkts, speakerSSRC)
	for _, rr := range rrs {
		if rr.SSRC != local {
			t.Errorf("RR sent from SSRC %#x, want %#x", rr.SSRC, local)
		}
	}
	last := rrs[len(rrs)-1].Reports[0]
	if last.LastSequenceNumber != 1<<16|40 {
		t.Errorf("RR extended highest seq %#x, want %#x", last.LastSequenceNumber, 1<<16|40)
	}
	if sink.bad != 0 {
		t.Errorf("%d datagrams pion could not parse", sink.bad)
	}

	// Each gap is NACKed at most NACKMaxPerPacket (2) times; one that
	// arrives meanwhile (a retransmission) no more.
	s.OnRTP(opusPacket(t, speakerSSRC, 20, 20*960))
	sent++
	lost = slices.DeleteFunc(lost, func(q uint16) bool { return q == 20 })
	for i := 1; i <= 4; i++ {
		s.Poll(now.Add(time.Duration(i) * 10 * time.Millisecond))
	}
	st := s.Stats()
	if want := uint64(2*len(lost) + 1); st.NACKedPackets != want {
		t.Errorf("NACKed %d sequence numbers, want %d: each of %d gaps twice, and the one filled once", st.NACKedPackets, want, len(lost))
	}
	if st.SSRC != speakerSSRC || st.NACKsSent == 0 || st.ReportsSent == 0 || st.RTT != 42*time.Millisecond || !st.NACKEnabled {
		t.Errorf("stats: %+v", st)
	}
	if st.PacketsReceived != uint64(sent) || st.PacketsLost != int64(len(lost)) || st.Jitter <= 0 {
		t.Errorf("stats: received %d of %d, lost %d of %d", st.PacketsReceived, sent, st.PacketsLost, len(lost))
	}

	defer func() { // Close keeps the last figures.
		_ = s.Close()
		if got := s.Stats(); got.PacketsReceived != uint64(sent) || got.PacketsLost != int64(len(lost)) {
			t.Errorf("after Close: %+v", got)
		}
	}()

	// The speaker's SR reaches the RR: LSR is its NTP middle bits.
	srNTP := NTPTime(time.Now())
	sr := marshal(t, &rtcp.SenderReport{SSRC: speakerSSRC, NTPTime: srNTP, RTPTime: 41 * 960, PacketCount: 40})
	s.OnRTCP(sr)
	waitFor(t, "an RR echoing the SR", func() bool {
		for _, rr := range receiverReports(sink.snapshot(), speakerSSRC) {
			if rr.Reports[0].LastSenderReport == NTPMiddle(srNTP) && rr.Reports[0].Delay > 0 {
				return true
			}
		}
		return false
	})
}

func TestSpeakerSessionNACKOff(t *testing.T) {
	sink := &rtcpSink{}
	s, err := NewSpeakerSession(SpeakerConfig{
		WriteRTCP:      sink.write,
		ReportInterval: 20 * time.Millisecond,
		NACKInterval:   10 * time.Millisecond,
		NoNACK:         true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	feed(t, s, speakerSSRC, 100, 120, 105)
	now := time.Now()
	s.Poll(now)
	s.Poll(now.Add(10 * time.Millisecond))
	waitFor(t, "suppressed NACKs and two reports", func() bool {
		return s.Stats().NACKsSuppressed >= 2 && len(receiverReports(sink.snapshot(), speakerSSRC)) >= 2
	})
	if seqs, _ := nacked(sink.snapshot(), speakerSSRC); len(seqs) != 0 || s.Stats().NACKsSent != 0 {
		t.Fatalf("NACK off, yet NACKed %v", seqs)
	}

	// UpdateNACK: no RTT known, nothing changes.
	if s.UpdateNACK(time.Second) {
		t.Error("UpdateNACK turned NACK on without an RTT")
	}
	s.SetNACK(true)
	feed(t, s, speakerSSRC, 121, 130, 125)
	s.Poll(now.Add(20 * time.Millisecond))
	if seqs, _ := nacked(sink.snapshot(), speakerSSRC); !slices.Contains(seqs, 125) {
		t.Errorf("NACKed %v after SetNACK(true), want 125 among them", seqs)
	}
}

func TestSpeakerSessionUpdateNACK(t *testing.T) {
	rtt := 30 * time.Millisecond
	s, err := NewSpeakerSession(SpeakerConfig{
		WriteRTCP: func([]byte) error { return nil },
		RTT:       func() time.Duration { return rtt },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// 30 ms RTT + 50 ms NACK interval + 20 ms frame = 100 ms.
	if s.UpdateNACK(80 * time.Millisecond) {
		t.Error("NACK on with an 80 ms jitter target")
	}
	if !s.UpdateNACK(120 * time.Millisecond) {
		t.Error("NACK off with a 120 ms jitter target")
	}
	rtt = 200 * time.Millisecond
	if s.UpdateNACK(120 * time.Millisecond) {
		t.Error("NACK on with 200 ms RTT")
	}
}

func TestSpeakerSessionSSRCChangeAndMalformed(t *testing.T) {
	sink := &rtcpSink{}
	s, err := NewSpeakerSession(SpeakerConfig{WriteRTCP: sink.write, ReportInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, bad := range [][]byte{nil, {0x80}, make([]byte, 11), {0x40, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, make([]byte, 2000),
		{0x8f, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, // 15 CSRCs promised, none there
	} {
		s.OnRTP(bad)
	}
	s.OnRTCP(nil)
	s.OnRTCP([]byte{0x80, 200, 0, 40})
	feed(t, s, speakerSSRC, 1, 10)
	s.OnRTP([]byte{0x8f, 111, 0, 11, 0, 0, 0, 0, 0x5E, 0xA4, 0xE4, 0x01}) // bound now, still malformed
	feed(t, s, speakerSSRC+1, 500, 510)
	st := s.Stats()
	if st.SSRC != speakerSSRC+1 || st.SSRCChanges != 1 || st.Malformed != 7 || st.RTCPErrors != 2 {
		t.Errorf("stats: %+v", st)
	}
	waitFor(t, "reports on the new SSRC", func() bool {
		return len(receiverReports(sink.snapshot(), speakerSSRC+1)) > 0
	})
}

func TestSpeakerSessionCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	var sessions []*SpeakerSession
	for range 5 {
		s, err := NewSpeakerSession(SpeakerConfig{WriteRTCP: func([]byte) error { return nil }})
		if err != nil {
			t.Fatal(err)
		}
		feed(t, s, speakerSSRC, 1, 3)
		sessions = append(sessions, s)
	}
	if runtime.NumGoroutine() <= before {
		t.Fatal("bound sessions run no goroutines?")
	}
	for _, s := range sessions {
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		s.OnRTP(opusPacket(t, speakerSSRC, 4, 4*960)) // ignored after Close
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })

	// A session that never saw RTP starts no goroutine.
	s, err := NewSpeakerSession(SpeakerConfig{WriteRTCP: func([]byte) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("an unbound session runs %d goroutines", n-before)
	}
	_ = s.Close()
}

func TestSpeakerSessionConcurrent(t *testing.T) {
	s, err := NewSpeakerSession(SpeakerConfig{
		WriteRTCP: func([]byte) error { return nil }, ReportInterval: 5 * time.Millisecond, NACKInterval: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { feed(t, s, speakerSSRC, 1, 2000, 50, 900) })
	wg.Go(func() {
		for i := range 200 {
			s.OnRTCP(marshal(t, &rtcp.SenderReport{SSRC: speakerSSRC, NTPTime: uint64(i) << 32}))
			s.SetNACK(i%2 == 0)
			_ = s.Stats()
		}
	})
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkSpeakerOnRTP(b *testing.B) {
	s, err := NewSpeakerSession(SpeakerConfig{WriteRTCP: func([]byte) error { return nil }})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	pkt := opusPacket(b, speakerSSRC, 0, 0)
	s.OnRTP(pkt)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		seq := uint16(i + 1)
		pkt[2], pkt[3] = byte(seq>>8), byte(seq)
		ts := uint32(i+1) * 960
		pkt[4], pkt[5], pkt[6], pkt[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
		s.OnRTP(pkt)
	}
}
