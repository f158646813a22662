package feedback

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pion/rtcp"
)

// ErrMalformedRTCP is what every parse error of ParseListenerRTCP matches
// with errors.Is.
var ErrMalformedRTCP = errors.New("feedback: malformed RTCP")

// malformed is a fixed reason for ErrMalformedRTCP; it costs no allocation.
type malformed string

func (e malformed) Error() string        { return "feedback: malformed RTCP: " + string(e) }
func (e malformed) Is(target error) bool { return target == ErrMalformedRTCP }

const (
	errEmpty      = malformed("empty datagram")
	errTruncated  = malformed("truncated header")
	errVersion    = malformed("version is not 2")
	errLength     = malformed("length runs past the end of the datagram")
	errPadding    = malformed("bad padding")
	errPaddingPos = malformed("padding on a packet that is not the last")
)

// MaxNACKs is how many NACKed sequence numbers a ListenerReport holds;
// more are counted in NACKsDropped.
const MaxNACKs = 64

// clockRate is Opus's RTP clock rate (RFC 7587), the unit of jitter.
const clockRate = 48000

// ListenerReport is what one RTCP datagram from a participant says about
// the stream we send it. The caller sets the three input fields, then calls
// ParseListenerRTCP, which keeps them and overwrites the rest.
//
// A ListenerReport holds scratch space (about 2 KiB) so that parsing does
// not allocate: keep one per reading goroutine and reuse it for every
// participant, changing the inputs. Do not copy one that is in use.
type ListenerReport struct {
	// MediaSSRC is the SSRC of our stream to this participant: only report
	// blocks and NACKs about it count. Zero takes the first of any SSRC.
	MediaSSRC uint32
	// Arrival is when the datagram arrived, on the clock the SRs were
	// stamped with (wall clock). RTT needs it.
	Arrival time.Time
	// SRs holds the sender reports we sent on the stream. RTT is computed
	// only for an LSR found there; nil means no RTT.
	SRs *SRHistory

	// Packets is how many RTCP packets the compound datagram held.
	Packets int
	// SenderSSRC is the participant's own SSRC, from its RR, SR or NACK.
	SenderSSRC uint32

	// HasReport says a report block about MediaSSRC was found; the fields
	// below are from it (RFC 3550 §6.4.1).
	HasReport      bool
	FractionLost   float64 // 0..1, since the participant's previous report
	CumulativeLost int32   // may be negative with duplicates
	HighestSeq     uint32  // extended highest sequence number received
	Jitter         float64 // interarrival jitter, seconds
	LSR, DLSR      uint32  // last SR (NTP middle 32) and delay since, 1/65536 s

	// HasRTT says RTT was computed from LSR and DLSR.
	HasRTT bool
	RTT    time.Duration

	// NACKCount sequence numbers of ours were NACKed (RFC 4585 generic
	// NACK); NACKed returns them. NACKsDropped more did not fit.
	NACKCount    int
	NACKsDropped int
	nacked       [MaxNACKs]uint16

	// PLIs counts picture loss indications, which mean nothing for audio
	// and are otherwise ignored.
	PLIs int
	// Bye says the datagram held an RTCP BYE: the participant is leaving.
	Bye bool

	// Scratch: pion structs reused so that their Unmarshal appends into
	// slices already grown, and a buffer to strip padding in.
	rr   rtcp.ReceiverReport
	sr   rtcp.SenderReport
	nack rtcp.TransportLayerNack
	bye  rtcp.Goodbye
	pad  [1500]byte
}

// NACKed returns the sequence numbers the datagram NACKed. The slice
// belongs to r and changes with the next parse.
func (r *ListenerReport) NACKed() []uint16 { return r.nacked[:r.NACKCount] }

func (r *ListenerReport) reset() {
	r.Packets, r.SenderSSRC = 0, 0
	r.HasReport, r.FractionLost, r.CumulativeLost, r.HighestSeq, r.Jitter = false, 0, 0, 0, 0
	r.LSR, r.DLSR, r.HasRTT, r.RTT = 0, 0, false, 0
	r.NACKCount, r.NACKsDropped, r.PLIs, r.Bye = 0, 0, 0, false
}

// ParseListenerRTCP parses one compound RTCP datagram from a participant
// (a listener, or a speaker as the receiver of its mix) into out, with
// pion/rtcp: report blocks of RRs and SRs, generic NACKs, BYE; PLIs are
// counted and ignored, other packet types skipped. It checks the RFC 3550
// framing first: every packet version 2, lengths within the datagram,
// padding only on the last packet and consistent. Anything malformed gives
// an error matching ErrMalformedRTCP, never a panic; out's outputs are then
// partial. It does not keep pkt and, in steady state, does not allocate
// (a BYE does).
func ParseListenerRTCP(pkt []byte, out *ListenerReport) error {
	out.reset()
	defer out.scrub()
	if len(pkt) == 0 {
		return errEmpty
	}
	for off := 0; off < len(pkt); {
		rest := pkt[off:]
		if len(rest) < 4 {
			return errTruncated
		}
		if rest[0]>>6 != 2 {
			return errVersion
		}
		n := (int(binary.BigEndian.Uint16(rest[2:])) + 1) * 4
		if n > len(rest) {
			return errLength
		}
		p := rest[:n]
		off += n
		if p[0]&0x20 != 0 {
			if off != len(pkt) {
				return errPaddingPos
			}
			var err error
			if p, err = out.stripPadding(p); err != nil {
				return err
			}
		}
		out.Packets++
		if err := out.parseOne(p); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrMalformedRTCP, rtcp.PacketType(p[1]), err)
		}
	}
	return nil
}

// stripPadding returns p without its padding, header rewritten to match, in
// r's scratch buffer (pion's parsers know nothing of padding). The padding
// count must leave the body whole 32-bit words, as every RTCP body is.
func (r *ListenerReport) stripPadding(p []byte) ([]byte, error) {
	pad := int(p[len(p)-1])
	if pad == 0 || pad > len(p)-4 || pad%4 != 0 {
		return nil, errPadding
	}
	n := len(p) - pad
	var q []byte
	if n <= len(r.pad) {
		q = r.pad[:n]
	} else {
		q = make([]byte, n)
	}
	copy(q, p[:n])
	q[0] &^= 0x20
	binary.BigEndian.PutUint16(q[2:], uint16(n/4-1))
	return q, nil
}

func (r *ListenerReport) parseOne(p []byte) error {
	switch rtcp.PacketType(p[1]) {
	case rtcp.TypeReceiverReport:
		r.rr.Reports = r.rr.Reports[:0]
		if err := r.rr.Unmarshal(p); err != nil {
			return err
		}
		r.SenderSSRC = r.rr.SSRC
		r.blocks(r.rr.Reports)
	case rtcp.TypeSenderReport:
		r.sr.Reports = r.sr.Reports[:0]
		if err := r.sr.Unmarshal(p); err != nil {
			return err
		}
		r.SenderSSRC = r.sr.SSRC
		r.blocks(r.sr.Reports)
	case rtcp.TypeTransportSpecificFeedback:
		if p[0]&0x1f != rtcp.FormatTLN {
			return nil
		}
		r.nack.Nacks = r.nack.Nacks[:0]
		if err := r.nack.Unmarshal(p); err != nil {
			return err
		}
		r.SenderSSRC = r.nack.SenderSSRC
		if r.MediaSSRC != 0 && r.nack.MediaSSRC != r.MediaSSRC {
			return nil
		}
		for i := range r.nack.Nacks {
			r.addNACKs(r.nack.Nacks[i])
		}
	case rtcp.TypePayloadSpecificFeedback:
		if p[0]&0x1f == rtcp.FormatPLI {
			r.PLIs++
		}
	case rtcp.TypeGoodbye:
		if err := r.bye.Unmarshal(p); err != nil {
			return err
		}
		r.Bye = true
	}
	return nil
}

// blocks takes the report block about MediaSSRC, the first one if that is
// zero.
func (r *ListenerReport) blocks(reports []rtcp.ReceptionReport) {
	for i := range reports {
		b := &reports[i]
		if r.MediaSSRC != 0 && b.SSRC != r.MediaSSRC {
			continue
		}
		r.HasReport = true
		r.FractionLost = float64(b.FractionLost) / 256
		r.CumulativeLost = int32(b.TotalLost<<8) >> 8 // 24-bit two's complement
		r.HighestSeq = b.LastSequenceNumber
		r.Jitter = float64(b.Jitter) / clockRate
		r.LSR, r.DLSR = b.LastSenderReport, b.Delay
		r.HasRTT, r.RTT = false, 0
		if r.SRs != nil && !r.Arrival.IsZero() && r.SRs.Sent(b.LastSenderReport) {
			r.RTT, r.HasRTT = RTT(r.Arrival, b.LastSenderReport, b.Delay)
		}
		if r.MediaSSRC == 0 {
			return
		}
	}
}

func (r *ListenerReport) addNACKs(pair rtcp.NackPair) {
	r.addNACK(pair.PacketID)
	for i := range uint16(16) {
		if pair.LostPackets&(1<<i) != 0 {
			r.addNACK(pair.PacketID + i + 1)
		}
	}
}

func (r *ListenerReport) addNACK(seq uint16) {
	if r.NACKCount == MaxNACKs {
		r.NACKsDropped++
		return
	}
	r.nacked[r.NACKCount] = seq
	r.NACKCount++
}

// scrub drops the scratch structs' references into the caller's datagram.
func (r *ListenerReport) scrub() {
	r.rr.ProfileExtensions = nil
	r.sr.ProfileExtensions = nil
	r.bye.Sources, r.bye.Reason = nil, ""
}

// ListenerTracker follows one participant's reports on the stream we send
// it: smoothed loss, jitter and RTT, and the SRs sent on the stream (for
// the RTT). It runs no goroutine and does not allocate; it is safe for
// concurrent use (reports arrive on the transport's goroutine, the SR
// scheduler records from the room's tick, dashboards read Stats).
type ListenerTracker struct {
	srs SRHistory

	mu sync.Mutex
	st ListenerStats
}

// ListenerStats is a ListenerTracker's view of one participant's reception.
type ListenerStats struct {
	Reports      uint64    // datagrams passed to Update
	BlockReports uint64    // of which carried a report block on our stream
	LastReport   time.Time // Arrival of the latest

	FractionLost     float64 // smoothed (EWMA, 1/4), 0..1
	LastFractionLost float64
	CumulativeLost   int32
	HighestSeq       uint32
	Jitter           float64 // smoothed (EWMA, 1/4), seconds
	LastJitter       float64

	RTT        time.Duration // smoothed (EWMA, 1/4); zero until a sample
	LastRTT    time.Duration
	RTTSamples uint64

	NACKs uint64 // sequence numbers NACKed in all, dropped ones included
	Bye   bool   // the participant sent BYE
}

// smoothing is the EWMA weight of a new report: RTCP reports come every few
// seconds, so a quarter lets a change show within a few reports.
const smoothing = 0.25

// SenderReports is the history the SenderReportScheduler records the
// stream's SRs in; give it to ListenerReport.SRs when parsing.
func (t *ListenerTracker) SenderReports() *SRHistory { return &t.srs }

// Update folds one parsed report into the tracker.
func (t *ListenerTracker) Update(r *ListenerReport) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := &t.st
	s.Reports++
	if !r.Arrival.IsZero() {
		s.LastReport = r.Arrival
	}
	if r.HasReport {
		if s.BlockReports == 0 {
			s.FractionLost, s.Jitter = r.FractionLost, r.Jitter
		} else {
			s.FractionLost += smoothing * (r.FractionLost - s.FractionLost)
			s.Jitter += smoothing * (r.Jitter - s.Jitter)
		}
		s.BlockReports++
		s.LastFractionLost, s.LastJitter = r.FractionLost, r.Jitter
		s.CumulativeLost, s.HighestSeq = r.CumulativeLost, r.HighestSeq
	}
	if r.HasRTT {
		if s.RTTSamples == 0 {
			s.RTT = r.RTT
		} else {
			s.RTT += time.Duration(smoothing * float64(r.RTT-s.RTT))
		}
		s.RTTSamples++
		s.LastRTT = r.RTT
	}
	s.NACKs += uint64(r.NACKCount + r.NACKsDropped)
	if r.Bye {
		s.Bye = true
	}
}

// Receive is the usual path in one call: it sets r's inputs (mediaSSRC,
// now, this tracker's SR history), parses pkt into r and, if it parsed,
// updates the tracker. r is scratch, shared by all trackers a goroutine
// serves.
func (t *ListenerTracker) Receive(pkt []byte, now time.Time, mediaSSRC uint32, r *ListenerReport) error {
	r.MediaSSRC, r.Arrival, r.SRs = mediaSSRC, now, &t.srs
	if err := ParseListenerRTCP(pkt, r); err != nil {
		return err
	}
	t.Update(r)
	return nil
}

// Stats returns the tracker's figures.
func (t *ListenerTracker) Stats() ListenerStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

// RTT is the smoothed round-trip time, zero while unknown. Its method value
// fits SpeakerConfig.RTT.
func (t *ListenerTracker) RTT() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st.RTT
}
