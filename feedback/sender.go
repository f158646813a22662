package feedback

import (
	"encoding/binary"
	"sync/atomic"
	"time"
)

// ntpEpochOffset is the number of seconds from the NTP epoch (1900) to the
// Unix epoch (1970).
const ntpEpochOffset = 2208988800

// NTPTime is t as a 64-bit NTP timestamp: seconds since 1900 in the high 32
// bits, the fraction of a second in the low 32 bits.
func NTPTime(t time.Time) uint64 {
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := (uint64(t.Nanosecond()) << 32) / uint64(time.Second)
	return secs<<32 | frac
}

// NTPMiddle is the middle 32 bits of an NTP timestamp (16 bits of seconds,
// 16 of fraction): the form RTCP's LSR and RTT arithmetic use.
func NTPMiddle(ntp uint64) uint32 { return uint32(ntp >> 16) }

// SenderReportSize is the size of an RTCP sender report without report
// blocks.
const SenderReportSize = 28

// AppendSenderReport appends an RFC 3550 §6.4.1 sender report without
// report blocks to dst and returns the extended slice: SSRC ssrc, the NTP
// timestamp of now, the RTP timestamp rtpTS that corresponds to the same
// instant, and the sender's packet and payload-octet counts. It does not
// allocate when dst has SenderReportSize bytes of room.
func AppendSenderReport(dst []byte, ssrc uint32, now time.Time, rtpTS uint32, packets, octets uint32) []byte {
	ntp := NTPTime(now)
	dst = append(dst,
		0x80,                    // V=2, P=0, RC=0
		200,                     // PT=SR
		0, SenderReportSize/4-1, // length in 32-bit words minus one
	)
	dst = binary.BigEndian.AppendUint32(dst, ssrc)
	dst = binary.BigEndian.AppendUint64(dst, ntp)
	dst = binary.BigEndian.AppendUint32(dst, rtpTS)
	dst = binary.BigEndian.AppendUint32(dst, packets)
	return binary.BigEndian.AppendUint32(dst, octets)
}

// AppendSDESCNAME appends an RTCP source description packet with one
// chunk, ssrc's CNAME item, to dst (RFC 3550 §6.5). A CNAME longer than 255
// bytes is cut to 255. It does not allocate when dst has room.
func AppendSDESCNAME(dst []byte, ssrc uint32, cname string) []byte {
	if len(cname) > 255 {
		cname = cname[:255]
	}
	chunk := 4 + 2 + len(cname) + 1 // SSRC, type and length, text, END
	chunk += (4 - chunk%4) % 4      // END and padding fill to a word
	dst = append(dst, 0x81, 202)    // V=2, SC=1, PT=SDES
	dst = binary.BigEndian.AppendUint16(dst, uint16(chunk/4))
	dst = binary.BigEndian.AppendUint32(dst, ssrc)
	dst = append(dst, 1, byte(len(cname))) // CNAME
	dst = append(dst, cname...)
	for i := 4 + 2 + len(cname); i < chunk; i++ {
		dst = append(dst, 0) // END, then padding to the word
	}
	return dst
}

// srHistoryLen is how many recent sender reports an SRHistory remembers:
// at one SR every 5 s, 40 s of them, enough for a slow receiver's reports.
const srHistoryLen = 8

// SRHistory remembers the NTP middle 32 bits of the last sender reports
// sent on one stream, so that a receiver's LSR can be checked against them.
// Its zero value is empty; it is safe for concurrent use (the scheduler
// records from the room's tick, the RTCP reader looks up) and never
// allocates.
type SRHistory struct {
	slots [srHistoryLen]atomic.Uint32
	next  atomic.Uint32
}

// Record notes an SR sent with the 64-bit NTP timestamp ntp.
func (h *SRHistory) Record(ntp uint64) {
	i := h.next.Add(1) - 1
	h.slots[i%srHistoryLen].Store(NTPMiddle(ntp))
}

// Sent reports whether lsr (an RR's "last SR" field) matches one of the
// recorded SRs. Zero, "no SR received", never matches.
func (h *SRHistory) Sent(lsr uint32) bool {
	if lsr == 0 {
		return false
	}
	for i := range h.slots {
		if h.slots[i].Load() == lsr {
			return true
		}
	}
	return false
}

// RTT computes a round-trip time per RFC 3550 §6.4.1 from a report block
// that arrived at now: A − LSR − DLSR, where A is the middle 32 bits of
// now's NTP timestamp and all three are in units of 1/65536 s. It reports
// false when the block carries no LSR or the result would be negative or
// absurd (LSR in the future, or more than 2^15 s ago).
func RTT(now time.Time, lsr, dlsr uint32) (time.Duration, bool) {
	if lsr == 0 {
		return 0, false
	}
	d := NTPMiddle(NTPTime(now)) - lsr // wraps mod 2^32 like the fields
	if d >= 1<<31 || dlsr > d {
		return 0, false
	}
	return time.Duration(uint64(d-dlsr) * uint64(time.Second) >> 16), true
}

// SRStream is one output stream the SenderReportScheduler reports on; the
// transport's per-participant state implements it.
type SRStream interface {
	// SenderInfo returns the stream's SSRC, the RTP timestamp that
	// corresponds to now, and the packets and payload octets sent so far
	// (wrapping mod 2^32, as RFC 3550 counts them).
	SenderInfo(now time.Time) (ssrc, rtpTS, packets, octets uint32)
	// SenderReports is where the scheduler records the SRs it sends, for
	// RTT from the receiver's reports; nil skips recording.
	SenderReports() *SRHistory
	// WriteRTCP sends one RTCP datagram to the stream's receiver. It must
	// not keep pkt.
	WriteRTCP(pkt []byte) error
}

// DefaultSRInterval is how long a SenderReportScheduler takes to report on
// every stream once.
const DefaultSRInterval = 5 * time.Second

// SenderReportScheduler spreads sender reports for many streams evenly
// over an interval: called once per room tick, it reports on the share of
// the streams due since the previous call (10,000 streams, a 5 s interval
// and 20 ms ticks: 40 a tick), walking the list round-robin. It runs no
// goroutine and does not allocate. It is not safe for concurrent use: one
// scheduler per room, called from the room's tick.
//
// The list passed to Tick should keep its order from tick to tick
// (members in join order, say). When streams join or leave, a stream may
// be reported once early or late in that round; nothing worse.
type SenderReportScheduler struct {
	// Interval is the time to report on every stream once; zero means
	// DefaultSRInterval.
	Interval time.Duration
	// CNAME, when set, follows each SR with an SDES CNAME in the same
	// compound packet, as RFC 3550 §6.1 asks. At most 255 bytes.
	CNAME string

	cursor int
	credit float64
	last   time.Time
	buf    [SenderReportSize + 4 + 4 + 2 + 255 + 4]byte

	sent, errors uint64
}

// Due advances the schedule to now for n streams and returns which are due:
// count streams from index start, wrapping past n-1 to 0. The first call
// only starts the clock.
func (s *SenderReportScheduler) Due(now time.Time, n int) (start, count int) {
	interval := s.Interval
	if interval <= 0 {
		interval = DefaultSRInterval
	}
	if n <= 0 {
		s.cursor, s.credit, s.last = 0, 0, now
		return 0, 0
	}
	if s.last.IsZero() {
		s.last = now
		return 0, 0
	}
	elapsed := now.Sub(s.last)
	s.last = now
	if elapsed > 0 {
		s.credit += float64(n) * float64(elapsed) / float64(interval)
	}
	if s.credit > float64(n) { // a stall: one full round, not a burst of several
		s.credit = float64(n)
	}
	count = int(s.credit)
	s.credit -= float64(count)
	if s.cursor >= n {
		s.cursor = 0
	}
	start = s.cursor
	s.cursor = (s.cursor + count) % n
	return start, count
}

// Tick sends the sender reports due at now to their streams and records
// each one's NTP timestamp in the stream's SRHistory. It returns how many
// it sent without error.
func (s *SenderReportScheduler) Tick(now time.Time, streams []SRStream) int {
	start, count := s.Due(now, len(streams))
	if count == 0 {
		return 0
	}
	ntp := NTPTime(now)
	ok := 0
	for k := range count {
		st := streams[(start+k)%len(streams)]
		ssrc, ts, packets, octets := st.SenderInfo(now)
		b := AppendSenderReport(s.buf[:0], ssrc, now, ts, packets, octets)
		if s.CNAME != "" {
			b = AppendSDESCNAME(b, ssrc, s.CNAME)
		}
		if h := st.SenderReports(); h != nil {
			h.Record(ntp) // before sending: the answer may come back at once
		}
		if err := st.WriteRTCP(b); err != nil {
			s.errors++
			continue
		}
		ok++
	}
	s.sent += uint64(ok)
	return ok
}

// Sent is how many SRs the scheduler has sent without error, and how many
// writes failed.
func (s *SenderReportScheduler) Sent() (sent, errors uint64) { return s.sent, s.errors }
