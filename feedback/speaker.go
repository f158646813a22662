package feedback

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/stats"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// Defaults of SpeakerConfig.
const (
	DefaultReportInterval   = time.Second
	DefaultNACKInterval     = 50 * time.Millisecond
	DefaultNACKMaxPerPacket = 2
	// nackLogSize is the NACK generator's receive log, in packets: 5 s of
	// 20 ms Opus, far more than a retransmission can be useful for.
	nackLogSize = 256
	// maxRTP bounds an incoming RTP packet: the transport's datagram limit.
	maxRTP = 1500
)

// frameDuration is an Opus packet's usual length; a loss is noticed when
// the next packet comes, one frame later.
const frameDuration = 20 * time.Millisecond

// SpeakerConfig configures a SpeakerSession. Zero fields take the defaults
// written beside them; WriteRTCP is required.
type SpeakerConfig struct {
	// LocalSSRC is the SSRC our receiver reports and NACKs come from: the
	// SSRC of our stream to this participant (engine Participant.SSRC), so
	// the speaker sees one peer. Zero picks one at random.
	LocalSSRC uint32
	// WriteRTCP sends one RTCP datagram to the speaker (rtpudp
	// Transport.WriteTo). The report interceptor calls it from its own
	// goroutine and Poll from its caller's, possibly concurrently; it must
	// not keep the slice and should not block.
	WriteRTCP func([]byte) error
	// Now is the clock for jitter and stats; default time.Now.
	Now func() time.Time

	// ReportInterval is how often a receiver report goes out; default 1 s.
	ReportInterval time.Duration
	// NACKInterval is how often Poll NACKs missing packets; default 50 ms.
	NACKInterval time.Duration
	// NACKMaxPerPacket bounds the NACKs for one missing packet; default 2.
	NACKMaxPerPacket uint16
	// NoNACK starts the session with NACK generation off; SetNACK and
	// UpdateNACK change it later.
	NoNACK bool
	// PayloadType is the speaker's Opus payload type; default 111.
	PayloadType uint8
	// RTT, if set, tells Stats and UpdateNACK the round-trip time to the
	// speaker; zero means unknown. The receiver-side interceptors cannot
	// measure it (that needs RFC 3611 XR, which plain-RTP clients do not
	// send); the speaker's reports on our stream to it can, so pass the
	// RTT method of that stream's ListenerTracker.
	RTT func() time.Duration
}

// SpeakerSession is the RTCP side of one speaker's incoming stream: it
// feeds the stream through pion/interceptor's receiver-report generator
// and stats recorder, without pion/webrtc, keeps its own log of the
// packets missing for NACKs (Poll, on the caller's clock), and sends what
// they produce through WriteRTCP.
//
// It binds lazily: nothing runs until the first RTP packet gives the
// speaker's SSRC. From then until Close the report interceptor runs a
// goroutine with a ticker (once a second); NACKs run on no goroutine of
// their own: pion's NACK generator woke a goroutine per speaker every
// 50 ms and allocated a map each time, 19% of a server's CPU with 300
// speakers. Listeners never get a session. A new SSRC (the speaker's
// client restarted) rebinds the stream. Close the session when the
// participant stops speaking, or it keeps sending empty reports.
//
// Methods are safe for concurrent use.
type SpeakerSession struct {
	cfg    SpeakerConfig
	chain  interceptor.Interceptor
	getter stats.Getter
	nackOn atomic.Bool

	mu         sync.Mutex // serialises OnRTP, OnRTCP, binding and Close
	closed     bool
	bound      bool
	info       *interceptor.StreamInfo
	reader     interceptor.RTPReader
	rtcpReader interceptor.RTCPReader
	buf        [maxRTP]byte
	attrs      interceptor.Attributes
	hdr        *rtp.Header // the header the interceptors parse into, reused
	check      rtp.Header  // parses packets until hdr is known
	rtcpAttrs  interceptor.Attributes
	final      stats.ReceivedRTPStreamStats // the recorder's last figures, kept at Close
	nacks      nackLog
	lastPoll   time.Time
	missing    [nackLogSize]uint16 // Poll's list of sequence numbers to NACK

	malformed, rtcpErrors, ssrcChanges          atomic.Uint64
	reportsSent, nacksSent, nackedSeqs          atomic.Uint64
	nacksSuppressed, writeErrors, marshalErrors atomic.Uint64
}

// NewSpeakerSession builds the interceptor chain. It starts nothing.
func NewSpeakerSession(cfg SpeakerConfig) (*SpeakerSession, error) {
	if cfg.WriteRTCP == nil {
		return nil, errors.New("feedback: SpeakerConfig.WriteRTCP is required")
	}
	if cfg.LocalSSRC == 0 {
		cfg.LocalSSRC = rand.Uint32() | 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReportInterval <= 0 {
		cfg.ReportInterval = DefaultReportInterval
	}
	if cfg.NACKInterval <= 0 {
		cfg.NACKInterval = DefaultNACKInterval
	}
	if cfg.NACKMaxPerPacket == 0 {
		cfg.NACKMaxPerPacket = DefaultNACKMaxPerPacket
	}
	if cfg.PayloadType == 0 {
		cfg.PayloadType = 111
	}

	var reg interceptor.Registry
	// Stats first: the chain wraps the RTCP writer in registry order, so
	// the later interceptors' packets pass through the stats recorder.
	sf, err := stats.NewInterceptor(stats.SetNowFunc(cfg.Now))
	if err != nil {
		return nil, err
	}
	var getter stats.Getter
	sf.OnNewPeerConnection(func(_ string, g stats.Getter) { getter = g })
	reg.Add(sf)
	rf, err := report.NewReceiverInterceptor(
		report.ReceiverInterval(cfg.ReportInterval), report.ReceiverNow(cfg.Now))
	if err != nil {
		return nil, err
	}
	reg.Add(rf)
	chain, err := reg.Build("")
	if err != nil {
		return nil, err
	}
	if getter == nil {
		_ = chain.Close()
		return nil, errors.New("feedback: stats interceptor gave no getter")
	}
	// pion starts each stats recorder on a goroutine of its own, and a
	// recorder drops packets until it has started: a fast first burst would
	// go uncounted. Start it as it is made (Start is idempotent).
	if si, ok := getter.(*stats.Interceptor); ok && si.RecorderFactory != nil {
		mk := si.RecorderFactory
		si.RecorderFactory = func(ssrc uint32, clockRate float64) stats.Recorder {
			rec := mk(ssrc, clockRate)
			rec.Start()
			return rec
		}
	}

	s := &SpeakerSession{
		cfg:       cfg,
		chain:     chain,
		getter:    getter,
		attrs:     make(interceptor.Attributes, 4),
		rtcpAttrs: make(interceptor.Attributes, 4),
	}
	s.nackOn.Store(!cfg.NoNACK)
	// Reading RTCP starts no goroutine: bind it now. The base readers
	// hand back the buffer they are given, which the session has filled.
	s.rtcpReader = chain.BindRTCPReader(interceptor.RTCPReaderFunc(passThrough))
	return s, nil
}

func passThrough(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
	return len(b), a, nil
}

// OnRTP feeds one RTP packet from the speaker through the interceptors
// (the engine's Participant.WriteRTP gets it separately). It does not keep
// pkt. The first packet, and a packet with a new SSRC, binds the stream;
// after that a packet costs a copy, a header parse and the interceptors'
// bookkeeping (see BenchmarkSpeakerOnRTP). Malformed packets are counted
// and dropped.
func (s *SpeakerSession) OnRTP(pkt []byte) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 || len(pkt) > maxRTP {
		s.malformed.Add(1)
		return
	}
	ssrc := binary.BigEndian.Uint32(pkt[8:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	b := s.buf[:copy(s.buf[:], pkt)]
	// The interceptors share the parsed header through the attributes
	// (interceptor.Attributes.GetRTPHeader). The first packet lets them
	// allocate it; later packets are parsed into that same header, left in
	// place, so no interceptor allocates one again. Parsing first also keeps
	// a malformed packet from binding a stream.
	h := s.hdr
	if h == nil {
		h = &s.check
		clear(s.attrs)
	}
	if _, err := h.Unmarshal(b); err != nil {
		s.malformed.Add(1)
		return
	}
	if !s.bound || ssrc != s.info.SSRC {
		s.bindLocked(ssrc)
	}
	if _, _, err := s.reader.Read(b, s.attrs); err != nil {
		s.malformed.Add(1)
		if s.hdr == nil {
			clear(s.attrs)
		}
		return
	}
	s.nacks.add(h.SequenceNumber)
	if s.hdr == nil {
		for _, v := range s.attrs {
			if h, ok := v.(*rtp.Header); ok && len(s.attrs) == 1 {
				s.hdr = h
			}
		}
	}
}

// bindLocked binds the remote stream ssrc, unbinding the previous one, and
// on the first call the RTCP writer, which starts the interceptors'
// goroutines.
func (s *SpeakerSession) bindLocked(ssrc uint32) {
	s.nacks.reset()
	if s.bound {
		s.chain.UnbindRemoteStream(s.info)
		s.ssrcChanges.Add(1)
	} else {
		s.chain.BindRTCPWriter(interceptor.RTCPWriterFunc(s.writeRTCP))
	}
	s.info = &interceptor.StreamInfo{
		SSRC:         ssrc,
		PayloadType:  s.cfg.PayloadType,
		MimeType:     "audio/opus",
		ClockRate:    clockRate,
		Channels:     2, // RFC 7587: always 2 in SDP, whatever is sent
		RTCPFeedback: []interceptor.RTCPFeedback{{Type: "nack"}},
	}
	s.reader = s.chain.BindRemoteStream(s.info, interceptor.RTPReaderFunc(passThrough))
	s.bound = true
}

// writeRTCP is the chain's RTCP writer: it stamps our SSRC on the
// interceptors' packets, drops NACKs while NACK is off, and sends the rest
// as one compound datagram. It runs on the interceptors' goroutines and
// Poll's caller.
func (s *SpeakerSession) writeRTCP(pkts []rtcp.Packet, _ interceptor.Attributes) (int, error) {
	var keep [4]rtcp.Packet
	out := keep[:0]
	var nacks, seqs, reports uint64
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.TransportLayerNack:
			if !s.nackOn.Load() {
				s.nacksSuppressed.Add(1)
				continue
			}
			p.SenderSSRC = s.cfg.LocalSSRC
			nacks++
			for _, pair := range p.Nacks {
				seqs += 1 + uint64(bits.OnesCount16(uint16(pair.LostPackets)))
			}
		case *rtcp.ReceiverReport:
			p.SSRC = s.cfg.LocalSSRC
			reports++
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return 0, nil
	}
	b, err := rtcp.Marshal(out)
	if err != nil {
		s.marshalErrors.Add(1)
		return 0, err
	}
	if err := s.cfg.WriteRTCP(b); err != nil {
		s.writeErrors.Add(1)
		return 0, err
	}
	s.nacksSent.Add(nacks)
	s.nackedSeqs.Add(seqs)
	s.reportsSent.Add(reports)
	return len(b), nil
}

// Poll sends a NACK for the packets missing from the speaker's stream,
// at most once per NACKInterval: those after the last received in sequence
// up to the highest received, each at most NACKMaxPerPacket times (while
// NACK is off they are counted as suppressed instead). Call it on a clock
// of your own, as often as NACKInterval or more (session.Manager does,
// every 50 ms for all its speakers): the session runs no goroutine of its
// own for NACKs. It allocates only when there is something to NACK.
func (s *SpeakerSession) Poll(now time.Time) {
	s.mu.Lock()
	if s.closed || !s.bound || now.Sub(s.lastPoll) < s.cfg.NACKInterval {
		s.mu.Unlock()
		return
	}
	s.lastPoll = now
	seqs := s.nacks.missing(s.missing[:0], s.cfg.NACKMaxPerPacket)
	if len(seqs) == 0 {
		s.mu.Unlock()
		return
	}
	nack := &rtcp.TransportLayerNack{MediaSSRC: s.info.SSRC, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}
	s.mu.Unlock()
	_, _ = s.writeRTCP([]rtcp.Packet{nack}, nil)
}

// OnRTCP feeds one RTCP datagram from the speaker (its SRs above all) to
// the interceptors: the SR's time goes into our receiver reports' LSR and
// DLSR, so the speaker can compute its RTT, and into the stats. It does
// not keep pkt. Datagrams pion cannot parse are counted and dropped.
//
// The report blocks in the same datagram are about our stream to the
// speaker; give the datagram to that stream's ListenerTracker as well.
func (s *SpeakerSession) OnRTCP(pkt []byte) {
	if len(pkt) == 0 || len(pkt) > maxRTP {
		s.rtcpErrors.Add(1)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	// pkt is read only, and not kept past the call (the attributes that
	// reference it are cleared), so it need not be copied.
	clear(s.rtcpAttrs)
	if _, _, err := s.rtcpReader.Read(pkt, s.rtcpAttrs); err != nil {
		s.rtcpErrors.Add(1)
	}
	clear(s.rtcpAttrs)
}

// SetNACK turns NACK generation on or off. NACKs only help when a
// retransmission can arrive before the jitter buffer plays the gap: RTT
// plus the NACK interval plus one frame must be under the buffer's target
// delay (UpdateNACK applies that rule). Otherwise they waste the speaker's
// uplink on packets that come too late; Opus in-band FEC and concealment
// cover the loss. While off, the generator still tracks losses but its
// NACKs are dropped and counted as suppressed.
func (s *SpeakerSession) SetNACK(enabled bool) { s.nackOn.Store(enabled) }

// NACKEnabled reports whether NACKs are being sent.
func (s *SpeakerSession) NACKEnabled() bool { return s.nackOn.Load() }

// UpdateNACK applies SetNACK's rule for a jitter buffer whose target delay
// is target (jitter.Stats.TargetDelay): NACK on when RTT + NACKInterval +
// 20 ms < target. With no RTT known (no SpeakerConfig.RTT, or no sample
// yet) it changes nothing. It returns whether NACK is on.
func (s *SpeakerSession) UpdateNACK(target time.Duration) bool {
	if s.cfg.RTT != nil {
		if rtt := s.cfg.RTT(); rtt > 0 {
			s.nackOn.Store(rtt+s.cfg.NACKInterval+frameDuration < target)
		}
	}
	return s.nackOn.Load()
}

// SpeakerStats is a SpeakerSession's view of the speaker's stream.
type SpeakerStats struct {
	SSRC            uint32        // the speaker's SSRC; zero before its first packet
	PacketsReceived uint64        // from pion's stats recorder
	PacketsLost     int64         // expected minus received
	Jitter          float64       // RFC 3550 interarrival jitter, seconds
	RTT             time.Duration // from SpeakerConfig.RTT; zero when unknown
	NACKEnabled     bool
	NACKsSent       uint64 // NACK packets sent
	NACKedPackets   uint64 // sequence numbers in them
	NACKsSuppressed uint64 // NACK packets dropped while NACK was off
	ReportsSent     uint64 // receiver reports sent
	WriteErrors     uint64 // WriteRTCP failures
	Malformed       uint64 // RTP packets dropped
	RTCPErrors      uint64 // RTCP datagrams pion could not parse
	SSRCChanges     uint64
}

// Stats returns the session's figures; after Close, the last ones.
func (s *SpeakerSession) Stats() SpeakerStats {
	st := SpeakerStats{
		NACKEnabled:     s.nackOn.Load(),
		NACKsSent:       s.nacksSent.Load(),
		NACKedPackets:   s.nackedSeqs.Load(),
		NACKsSuppressed: s.nacksSuppressed.Load(),
		ReportsSent:     s.reportsSent.Load(),
		WriteErrors:     s.writeErrors.Load() + s.marshalErrors.Load(),
		Malformed:       s.malformed.Load(),
		RTCPErrors:      s.rtcpErrors.Load(),
		SSRCChanges:     s.ssrcChanges.Load(),
	}
	s.mu.Lock()
	bound, closed, final := s.bound, s.closed, s.final
	if bound {
		st.SSRC = s.info.SSRC
	}
	s.mu.Unlock()
	if bound && !closed {
		if ps := s.getter.Get(st.SSRC); ps != nil {
			final = ps.InboundRTPStreamStats.ReceivedRTPStreamStats
		}
	}
	st.PacketsReceived, st.PacketsLost, st.Jitter = final.PacketsReceived, final.PacketsLost, final.Jitter
	if s.cfg.RTT != nil {
		st.RTT = s.cfg.RTT()
	}
	return st
}

// Close unbinds the stream and stops the interceptors' goroutines, waiting
// for them (and so for a WriteRTCP in progress). Later calls do nothing.
func (s *SpeakerSession) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.bound {
		if ps := s.getter.Get(s.info.SSRC); ps != nil { // the recorder goes with the stream
			s.final = ps.InboundRTPStreamStats.ReceivedRTPStreamStats
		}
		s.chain.UnbindRemoteStream(s.info)
	}
	s.mu.Unlock()
	return s.chain.Close()
}
