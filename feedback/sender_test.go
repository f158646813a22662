package feedback

import (
	"errors"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

func TestNTPTime(t *testing.T) {
	cases := []struct {
		t    time.Time
		want uint64
	}{
		{time.Unix(0, 0), ntpEpochOffset << 32},
		{time.Unix(1, 500_000_000), (ntpEpochOffset+1)<<32 | 0x80000000},
		{time.Unix(1_700_000_000, 250_000_000), (1_700_000_000+ntpEpochOffset)<<32 | 0x40000000},
	}
	for _, c := range cases {
		if got := NTPTime(c.t); got != c.want {
			t.Errorf("NTPTime(%v) = %#x, want %#x", c.t, got, c.want)
		}
	}
	if got := NTPMiddle(0x1122334455667788); got != 0x33445566 {
		t.Errorf("NTPMiddle = %#x", got)
	}
}

func TestSenderReportRoundTrip(t *testing.T) {
	now := time.Unix(1_712_345_678, 123_456_789)
	buf := make([]byte, 0, 512)
	b := AppendSenderReport(buf, 0xCAFEBABE, now, 0x01020304, 1234, 98765)
	if len(b) != SenderReportSize {
		t.Fatalf("SR is %d bytes, want %d", len(b), SenderReportSize)
	}
	if &b[0] != &buf[:1][0] {
		t.Fatal("AppendSenderReport did not write into dst")
	}
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		t.Fatalf("pion cannot parse our SR: %v", err)
	}
	if len(pkts) != 1 {
		t.Fatalf("got %d packets", len(pkts))
	}
	sr, ok := pkts[0].(*rtcp.SenderReport)
	if !ok {
		t.Fatalf("got %T, want *rtcp.SenderReport", pkts[0])
	}
	if sr.SSRC != 0xCAFEBABE || sr.RTPTime != 0x01020304 || sr.PacketCount != 1234 || sr.OctetCount != 98765 {
		t.Errorf("fields: %+v", sr)
	}
	if len(sr.Reports) != 0 || len(sr.ProfileExtensions) != 0 {
		t.Errorf("unexpected report blocks or extensions: %+v", sr)
	}
	if sr.NTPTime != NTPTime(now) {
		t.Errorf("NTP %#x, want %#x", sr.NTPTime, NTPTime(now))
	}
	// Back to wall time, within the fraction's resolution.
	secs := int64(sr.NTPTime>>32) - ntpEpochOffset
	nanos := int64((sr.NTPTime & 0xFFFFFFFF) * uint64(time.Second) >> 32)
	if d := time.Unix(secs, nanos).Sub(now); d < -time.Nanosecond || d > time.Nanosecond {
		t.Errorf("NTP time is %v off", d)
	}

	// With an SDES CNAME, as the scheduler sends it.
	b = AppendSDESCNAME(b, 0xCAFEBABE, "handsup@room-1")
	if len(b)%4 != 0 {
		t.Fatalf("compound length %d not a multiple of 4", len(b))
	}
	pkts, err = rtcp.Unmarshal(b)
	if err != nil {
		t.Fatalf("pion cannot parse SR+SDES: %v", err)
	}
	sdes, ok := pkts[1].(*rtcp.SourceDescription)
	if !ok || len(sdes.Chunks) != 1 || sdes.Chunks[0].Source != 0xCAFEBABE ||
		len(sdes.Chunks[0].Items) != 1 || sdes.Chunks[0].Items[0].Type != rtcp.SDESCNAME ||
		sdes.Chunks[0].Items[0].Text != "handsup@room-1" {
		t.Errorf("SDES: %+v", pkts[1])
	}
	for n := range 9 { // every padding length
		name := "abcdefgh"[:n]
		b := AppendSDESCNAME(nil, 1, name)
		p, err := rtcp.Unmarshal(b)
		if err != nil {
			t.Fatalf("CNAME %q: %v", name, err)
		}
		if got := p[0].(*rtcp.SourceDescription).Chunks[0].Items[0].Text; got != name {
			t.Errorf("CNAME %q came back %q", name, got)
		}
	}

	if a := testing.AllocsPerRun(100, func() {
		b := AppendSenderReport(buf[:0], 1, now, 2, 3, 4)
		_ = AppendSDESCNAME(b, 1, "handsup")
	}); a != 0 {
		t.Errorf("AppendSenderReport allocates %.0f times", a)
	}
}

func TestRTTFromConstructedRR(t *testing.T) {
	var h SRHistory
	sentAt := time.Unix(1_700_000_000, 400_000_000)
	ntp := NTPTime(sentAt)
	h.Record(NTPTime(sentAt.Add(-5 * time.Second)))
	h.Record(ntp)
	lsr := NTPMiddle(ntp)
	const hold = 1500 * time.Millisecond // the listener held our SR this long
	const wantRTT = 80 * time.Millisecond
	dlsr := uint32(hold * 65536 / time.Second)
	arrival := sentAt.Add(wantRTT + hold)

	rr := &rtcp.ReceiverReport{SSRC: 0x1111, Reports: []rtcp.ReceptionReport{{
		SSRC: 0x2222, FractionLost: 26, TotalLost: 7, LastSequenceNumber: 0x0001_0010,
		Jitter: 240, LastSenderReport: lsr, Delay: dlsr,
	}}}
	raw, err := rr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r := &ListenerReport{MediaSSRC: 0x2222, Arrival: arrival, SRs: &h}
	if err := ParseListenerRTCP(raw, r); err != nil {
		t.Fatal(err)
	}
	if !r.HasRTT {
		t.Fatalf("no RTT: %+v", r)
	}
	// The fields are in 1/65536 s: allow two units of rounding.
	if d := r.RTT - wantRTT; d < -31*time.Microsecond || d > 31*time.Microsecond {
		t.Errorf("RTT %v, want %v", r.RTT, wantRTT)
	}
	// The formula directly, in NTP units: A − LSR − DLSR.
	a := NTPMiddle(NTPTime(arrival))
	if got, _ := RTT(arrival, lsr, dlsr); got != time.Duration(uint64(a-lsr-dlsr)*uint64(time.Second)>>16) {
		t.Errorf("RTT() = %v disagrees with A-LSR-DLSR", got)
	}

	// An LSR we never sent gives no RTT; nor does one without a history,
	// an arrival time, or with a DLSR longer than the time since the SR.
	for name, mod := range map[string]func(*ListenerReport, *rtcp.ReceptionReport){
		"unknown LSR":  func(_ *ListenerReport, b *rtcp.ReceptionReport) { b.LastSenderReport = lsr + 1 },
		"zero LSR":     func(_ *ListenerReport, b *rtcp.ReceptionReport) { b.LastSenderReport = 0 },
		"no history":   func(r *ListenerReport, _ *rtcp.ReceptionReport) { r.SRs = nil },
		"no arrival":   func(r *ListenerReport, _ *rtcp.ReceptionReport) { r.Arrival = time.Time{} },
		"DLSR too big": func(_ *ListenerReport, b *rtcp.ReceptionReport) { b.Delay = dlsr * 2 },
		"LSR future": func(r *ListenerReport, _ *rtcp.ReceptionReport) {
			r.Arrival = sentAt.Add(-time.Second)
		},
	} {
		rr := *rr
		rr.Reports = []rtcp.ReceptionReport{rr.Reports[0]}
		r := &ListenerReport{MediaSSRC: 0x2222, Arrival: arrival, SRs: &h}
		mod(r, &rr.Reports[0])
		raw, _ := rr.Marshal()
		if err := ParseListenerRTCP(raw, r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.HasRTT {
			t.Errorf("%s: RTT %v, want none", name, r.RTT)
		}
		if !r.HasReport {
			t.Errorf("%s: report block lost", name)
		}
	}
}

func TestSRHistory(t *testing.T) {
	var h SRHistory
	if h.Sent(0) || h.Sent(1) {
		t.Fatal("empty history matched")
	}
	base := NTPTime(time.Unix(1_700_000_000, 0))
	for i := range uint64(20) {
		h.Record(base + i<<32)
	}
	for i := range uint64(20) {
		want := i >= 20-srHistoryLen
		if got := h.Sent(NTPMiddle(base + i<<32)); got != want {
			t.Errorf("SR %d: Sent = %v, want %v", i, got, want)
		}
	}
}

// fakeStream is an SRStream that counts what it gets.
type fakeStream struct {
	ssrc   uint32
	hist   SRHistory
	got    int
	last   []byte
	fail   bool
	copyTo bool
}

func (f *fakeStream) SenderInfo(now time.Time) (ssrc, rtpTS, packets, octets uint32) {
	return f.ssrc, uint32(now.UnixMilli() * 48), 100, 8000
}
func (f *fakeStream) SenderReports() *SRHistory { return &f.hist }
func (f *fakeStream) WriteRTCP(pkt []byte) error {
	f.got++
	if f.copyTo {
		f.last = append(f.last[:0], pkt...)
	}
	if f.fail {
		return errors.New("send failed")
	}
	return nil
}

func TestSenderReportSchedulerSpreads(t *testing.T) {
	const n = 10_000
	fakes := make([]fakeStream, n)
	streams := make([]SRStream, n)
	for i := range fakes {
		fakes[i].ssrc = uint32(i + 1)
		streams[i] = &fakes[i]
	}
	fakes[7].copyTo = true
	var s SenderReportScheduler
	now := time.Unix(1_700_000_000, 0)
	if got := s.Tick(now, streams); got != 0 {
		t.Fatalf("first tick sent %d, want 0 (it starts the clock)", got)
	}
	total := 0
	const ticks = int(DefaultSRInterval / (20 * time.Millisecond)) // 250
	for range ticks {
		now = now.Add(20 * time.Millisecond)
		got := s.Tick(now, streams)
		if got < 39 || got > 41 {
			t.Fatalf("a tick sent %d SRs, want about 40", got)
		}
		total += got
	}
	if total < n-1 || total > n {
		t.Fatalf("one interval sent %d SRs, want %d", total, n)
	}
	for i := range fakes {
		if fakes[i].got > 1 {
			t.Fatalf("stream %d reported %d times in one interval", i, fakes[i].got)
		}
	}
	// The SR a stream got parses, and its NTP time is in the history.
	pkts, err := rtcp.Unmarshal(fakes[7].last)
	if err != nil {
		t.Fatal(err)
	}
	sr := pkts[0].(*rtcp.SenderReport)
	if sr.SSRC != 8 || sr.PacketCount != 100 || sr.OctetCount != 8000 {
		t.Errorf("SR %+v", sr)
	}
	if !fakes[7].hist.Sent(NTPMiddle(sr.NTPTime)) {
		t.Error("SR not recorded in the stream's history")
	}
	if sent, errs := s.Sent(); sent != uint64(total) || errs != 0 {
		t.Errorf("Sent() = %d, %d", sent, errs)
	}

	// Steady state allocates nothing.
	if a := testing.AllocsPerRun(50, func() {
		now = now.Add(20 * time.Millisecond)
		s.Tick(now, streams)
	}); a != 0 {
		t.Errorf("Tick allocates %.1f times", a)
	}

	// A stall sends at most one round, not a burst of several.
	now = now.Add(time.Minute)
	if got := s.Tick(now, streams); got != n {
		t.Errorf("after a stall: %d SRs, want %d", got, n)
	}
}

func TestSenderReportSchedulerChangingList(t *testing.T) {
	s := SenderReportScheduler{Interval: time.Second, CNAME: "x"}
	now := time.Unix(1_700_000_000, 0)
	mk := func(n int) []SRStream {
		out := make([]SRStream, n)
		for i := range out {
			out[i] = &fakeStream{ssrc: uint32(i + 1), fail: i%2 == 0}
		}
		return out
	}
	s.Tick(now, mk(100))
	for i, n := range []int{100, 7, 0, 1, 50, 3} {
		now = now.Add(300 * time.Millisecond)
		streams := mk(n)
		got := s.Tick(now, streams)
		if got > n {
			t.Fatalf("step %d: sent %d to %d streams", i, got, n)
		}
	}
	if _, errs := s.Sent(); errs == 0 {
		t.Error("write errors not counted")
	}
}
