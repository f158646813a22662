package feedback

import (
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

const (
	ourSSRC      = 0x0A0B0C0D // our output stream to the listener
	listenerSSRC = 0x11223344
)

func marshal(t testing.TB, pkts ...rtcp.Packet) []byte {
	t.Helper()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// listenerCompound is what a listener's client typically sends: an RR on
// our stream, its SDES, a NACK, and a PLI we ignore.
func listenerCompound(t testing.TB) []byte {
	return marshal(t,
		&rtcp.ReceiverReport{SSRC: listenerSSRC, Reports: []rtcp.ReceptionReport{
			{SSRC: 0x99999999, FractionLost: 255, TotalLost: 1000}, // someone else's stream
			{SSRC: ourSSRC, FractionLost: 64, TotalLost: 0xFFFFFE, LastSequenceNumber: 0x0002_0010,
				Jitter: 480, LastSenderReport: 0x12345678, Delay: 0x8000},
		}},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{
			Source: listenerSSRC, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "listener"}},
		}}},
		&rtcp.TransportLayerNack{SenderSSRC: listenerSSRC, MediaSSRC: ourSSRC,
			Nacks: []rtcp.NackPair{{PacketID: 100, LostPackets: 0b101}, {PacketID: 65535, LostPackets: 1}}},
		&rtcp.PictureLossIndication{SenderSSRC: listenerSSRC, MediaSSRC: ourSSRC},
	)
}

func TestParseListenerRTCP(t *testing.T) {
	raw := listenerCompound(t)
	r := &ListenerReport{MediaSSRC: ourSSRC}
	if err := ParseListenerRTCP(raw, r); err != nil {
		t.Fatal(err)
	}
	if r.Packets != 4 || r.SenderSSRC != listenerSSRC || !r.HasReport {
		t.Fatalf("report: %+v", r)
	}
	if r.FractionLost != 0.25 || r.CumulativeLost != -2 || r.HighestSeq != 0x0002_0010 {
		t.Errorf("loss: fraction %v cumulative %d highest %#x", r.FractionLost, r.CumulativeLost, r.HighestSeq)
	}
	if r.Jitter != 0.01 {
		t.Errorf("jitter %v s, want 0.01 (480 at 48 kHz)", r.Jitter)
	}
	if r.LSR != 0x12345678 || r.DLSR != 0x8000 || r.HasRTT {
		t.Errorf("LSR %#x DLSR %#x HasRTT %v", r.LSR, r.DLSR, r.HasRTT)
	}
	if want := []uint16{100, 101, 103, 65535, 0}; !slices.Equal(r.NACKed(), want) {
		t.Errorf("NACKed %v, want %v", r.NACKed(), want)
	}
	if r.PLIs != 1 || r.Bye {
		t.Errorf("PLIs %d Bye %v", r.PLIs, r.Bye)
	}

	// MediaSSRC zero takes the first block; a NACK about another SSRC is
	// not ours.
	r2 := &ListenerReport{}
	if err := ParseListenerRTCP(raw, r2); err != nil {
		t.Fatal(err)
	}
	if r2.FractionLost != 255.0/256 || r2.CumulativeLost != 1000 {
		t.Errorf("first block: %+v", r2)
	}
	r3 := &ListenerReport{MediaSSRC: 0x5555}
	if err := ParseListenerRTCP(raw, r3); err != nil {
		t.Fatal(err)
	}
	if r3.HasReport || r3.NACKCount != 0 {
		t.Errorf("other SSRC: HasReport %v NACKs %v", r3.HasReport, r3.NACKed())
	}

	// A speaker's SR carries its report blocks on our stream; BYE.
	raw = marshal(t,
		&rtcp.SenderReport{SSRC: listenerSSRC, NTPTime: 1, Reports: []rtcp.ReceptionReport{
			{SSRC: ourSSRC, FractionLost: 128, TotalLost: 5},
		}},
		&rtcp.Goodbye{Sources: []uint32{listenerSSRC}, Reason: "bye"},
	)
	if err := ParseListenerRTCP(raw, r); err != nil {
		t.Fatal(err)
	}
	if !r.HasReport || r.FractionLost != 0.5 || r.CumulativeLost != 5 || !r.Bye || r.NACKCount != 0 || r.PLIs != 0 {
		t.Errorf("SR+BYE: %+v", r)
	}
}

func TestParseListenerRTCPPadding(t *testing.T) {
	rr := marshal(t, &rtcp.ReceiverReport{SSRC: listenerSSRC, Reports: []rtcp.ReceptionReport{
		{SSRC: ourSSRC, FractionLost: 32},
	}})
	nack := marshal(t, &rtcp.TransportLayerNack{SenderSSRC: listenerSSRC, MediaSSRC: ourSSRC,
		Nacks: []rtcp.NackPair{{PacketID: 7}}})
	// The NACK, last in the compound, padded with 8 bytes.
	padded := append(slices.Clone(nack), 0, 0, 0, 0, 0, 0, 0, 8)
	padded[0] |= 0x20
	binary.BigEndian.PutUint16(padded[2:], uint16(len(padded)/4-1))
	raw := append(slices.Clone(rr), padded...)
	r := &ListenerReport{MediaSSRC: ourSSRC}
	if err := ParseListenerRTCP(raw, r); err != nil {
		t.Fatalf("padded NACK: %v", err)
	}
	if !r.HasReport || r.FractionLost != 0.125 || !slices.Equal(r.NACKed(), []uint16{7}) {
		t.Errorf("padded: %+v", r)
	}
}

// malformedDatagrams are RTCP datagrams ParseListenerRTCP must refuse.
func malformedDatagrams(t testing.TB) map[string][]byte {
	rr := marshal(t, &rtcp.ReceiverReport{SSRC: listenerSSRC, Reports: []rtcp.ReceptionReport{{SSRC: ourSSRC}}})
	nack := marshal(t, &rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: ourSSRC, Nacks: []rtcp.NackPair{{PacketID: 1}}})
	with := func(b []byte, f func(b []byte) []byte) []byte { return f(slices.Clone(b)) }
	padTo := func(b []byte, pad byte, extra int) []byte {
		b = append(b, make([]byte, extra)...)
		b[len(b)-1] = pad
		b[0] |= 0x20
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)/4-1))
		return b
	}
	return map[string][]byte{
		"empty":                  {},
		"three bytes":            {0x80, 201, 0},
		"version 1":              with(rr, func(b []byte) []byte { b[0] = b[0]&0x3f | 1<<6; return b }),
		"version 0":              with(rr, func(b []byte) []byte { b[0] &= 0x3f; return b }),
		"version 3 second":       append(slices.Clone(rr), with(nack, func(b []byte) []byte { b[0] |= 0xc0; return b })...),
		"length past the end":    with(rr, func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 20); return b }),
		"truncated datagram":     rr[:len(rr)-4],
		"trailing two bytes":     append(slices.Clone(rr), 0x80, 201),
		"trailing header":        append(slices.Clone(rr), 0x80, 201, 0, 5),
		"padding count zero":     with(nack, func(b []byte) []byte { return padTo(b, 0, 4) }),
		"padding past packet":    with(nack, func(b []byte) []byte { return padTo(b, 200, 4) }),
		"padding not word":       with(nack, func(b []byte) []byte { return padTo(b, 3, 4) }),
		"padding on first":       append(with(nack, func(b []byte) []byte { return padTo(b, 4, 4) }), rr...),
		"RR count past blocks":   with(rr, func(b []byte) []byte { b[0] = b[0]&0xe0 | 2; return b }),
		"RR header only":         {0x81, 201, 0, 0},
		"SR without sender info": {0x80, 200, 0, 1, 1, 2, 3, 4},
		"SR count past blocks":   marshalSRWithCount(t, 3),
		"NACK without FCI":       {0x81, 205, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2},
		"BYE count past sources": {0x83, 203, 0, 1, 0, 0, 0, 1},
		"BYE reason past end":    {0x81, 203, 0, 2, 0, 0, 0, 1, 9, 'a', 'b', 'c'},
	}
}

func marshalSRWithCount(t testing.TB, count byte) []byte {
	b := marshal(t, &rtcp.SenderReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: ourSSRC}}})
	b[0] = b[0]&0xe0 | count
	return b
}

func TestParseListenerRTCPMalformed(t *testing.T) {
	cases := malformedDatagrams(t)
	if len(cases) < 12 {
		t.Fatalf("only %d cases", len(cases))
	}
	r := &ListenerReport{MediaSSRC: ourSSRC, Arrival: time.Now(), SRs: new(SRHistory)}
	for name, raw := range cases {
		err := ParseListenerRTCP(raw, r)
		if err == nil {
			t.Errorf("%s: no error (% x)", name, raw)
			continue
		}
		if !errors.Is(err, ErrMalformedRTCP) {
			t.Errorf("%s: error %v does not match ErrMalformedRTCP", name, err)
		}
	}
}

func TestParseListenerRTCPDoesNotAllocate(t *testing.T) {
	raw := listenerCompound(t)
	var h SRHistory
	h.Record(1 << 16)
	r := &ListenerReport{MediaSSRC: ourSSRC, Arrival: time.Now(), SRs: &h}
	var tr ListenerTracker
	if a := testing.AllocsPerRun(200, func() {
		if err := ParseListenerRTCP(raw, r); err != nil {
			t.Fatal(err)
		}
		tr.Update(r)
	}); a != 0 {
		t.Errorf("parse and update allocate %.1f times per report", a)
	}
	// The scratch structs keep nothing of the datagram.
	if r.rr.ProfileExtensions != nil || r.sr.ProfileExtensions != nil {
		t.Error("scratch keeps a reference to the datagram")
	}
}

func TestListenerTracker(t *testing.T) {
	var tr ListenerTracker
	h := tr.SenderReports()
	start := time.Unix(1_700_000_000, 0)
	r := new(ListenerReport)
	send := func(at time.Time, fraction uint8, jitter uint32, rtt time.Duration, nacks []rtcp.NackPair) {
		t.Helper()
		srAt := at.Add(-rtt - time.Second)
		h.Record(NTPTime(srAt))
		pkts := []rtcp.Packet{&rtcp.ReceiverReport{SSRC: listenerSSRC, Reports: []rtcp.ReceptionReport{{
			SSRC: ourSSRC, FractionLost: fraction, TotalLost: uint32(fraction), Jitter: jitter,
			LastSenderReport: NTPMiddle(NTPTime(srAt)), Delay: 65536,
		}}}}
		if len(nacks) > 0 {
			pkts = append(pkts, &rtcp.TransportLayerNack{SenderSSRC: listenerSSRC, MediaSSRC: ourSSRC, Nacks: nacks})
		}
		if err := tr.Receive(marshal(t, pkts...), at, ourSSRC, r); err != nil {
			t.Fatal(err)
		}
	}
	send(start, 0, 480, 100*time.Millisecond, nil)
	st := tr.Stats()
	if st.Reports != 1 || st.FractionLost != 0 || st.Jitter != 0.01 || st.RTTSamples != 1 {
		t.Fatalf("first report: %+v", st)
	}
	if d := st.RTT - 100*time.Millisecond; d < -time.Millisecond || d > time.Millisecond {
		t.Errorf("RTT %v, want 100ms", st.RTT)
	}
	// Loss appears: the smoothed figure moves a quarter of the way.
	send(start.Add(5*time.Second), 128, 480, 100*time.Millisecond, []rtcp.NackPair{{PacketID: 9, LostPackets: 3}})
	st = tr.Stats()
	if st.LastFractionLost != 0.5 || st.FractionLost != 0.125 || st.NACKs != 3 {
		t.Errorf("after loss: %+v", st)
	}
	for i := range 30 {
		send(start.Add(time.Duration(10+5*i)*time.Second), 128, 960, 300*time.Millisecond, nil)
	}
	st = tr.Stats()
	if st.FractionLost < 0.49 || st.Jitter < 0.0199 || st.RTT < 299*time.Millisecond || st.RTT > 301*time.Millisecond {
		t.Errorf("converged: %+v", st)
	}
	if tr.RTT() != st.RTT || st.Reports != 32 || st.BlockReports != 32 {
		t.Errorf("RTT() %v, stats %+v", tr.RTT(), st)
	}
	if !st.LastReport.Equal(start.Add(155 * time.Second)) {
		t.Errorf("LastReport %v", st.LastReport)
	}
	// A malformed datagram leaves the tracker alone.
	if err := tr.Receive([]byte{0x80, 201, 0, 9}, start, ourSSRC, r); err == nil {
		t.Fatal("malformed datagram accepted")
	}
	if tr.Stats().Reports != 32 {
		t.Error("malformed datagram counted")
	}
}

func FuzzParseListenerRTCP(f *testing.F) {
	f.Add(listenerCompound(f))
	for _, raw := range malformedDatagrams(f) {
		f.Add(raw)
	}
	f.Add(marshal(f, &rtcp.Goodbye{Sources: []uint32{1, 2}, Reason: "x"}))
	f.Add(marshal(f, &rtcp.ExtendedReport{SenderSSRC: 1, Reports: []rtcp.ReportBlock{
		&rtcp.ReceiverReferenceTimeReportBlock{NTPTimestamp: 5}}}))
	f.Add(marshal(f, &rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: 1, Bitrate: 1e5, SSRCs: []uint32{2}}))
	var h SRHistory
	h.Record(NTPTime(time.Unix(1_700_000_000, 0)))
	r := &ListenerReport{Arrival: time.Unix(1_700_000_001, 0), SRs: &h}
	var tr ListenerTracker
	f.Fuzz(func(t *testing.T, raw []byte) {
		orig := slices.Clone(raw)
		err := ParseListenerRTCP(raw, r)
		if !slices.Equal(raw, orig) {
			t.Fatal("ParseListenerRTCP modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrMalformedRTCP) {
				t.Fatalf("error %v does not match ErrMalformedRTCP", err)
			}
			return
		}
		if r.NACKCount > MaxNACKs || r.FractionLost < 0 || r.FractionLost >= 1 || r.Jitter < 0 || r.RTT < 0 {
			t.Fatalf("impossible report: %+v", r)
		}
		if r.Packets == 0 {
			t.Fatal("accepted a datagram with no packets")
		}
		tr.Update(r)
	})
}
