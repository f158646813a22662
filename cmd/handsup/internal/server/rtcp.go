package server

import (
	"time"

	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/feedback"
	"github.com/handsup-audio/handsup/session/rtpudp"
)

// member is the server's per-participant state: its address, what its
// receiver reports say about the stream we send it, and, while it speaks,
// the RTCP session of its incoming stream.
type member struct {
	s       *Server
	room    *room
	part    *engine.Participant
	peer    *rtpudp.Peer
	tracker feedback.ListenerTracker

	session *feedback.SpeakerSession // guarded by Server.sessMu; nil unless speaking
}

// SenderInfo, SenderReports and WriteRTCP make a member a stream the
// room's sender-report scheduler reports on.
func (m *member) SenderInfo(time.Time) (ssrc, rtpTS, packets, octets uint32) {
	ssrc, ts, p, o := m.part.OutputInfo()
	return ssrc, ts, uint32(p), uint32(o)
}

func (m *member) SenderReports() *feedback.SRHistory { return m.tracker.SenderReports() }

func (m *member) WriteRTCP(pkt []byte) error {
	err := m.s.udp.WriteTo(pkt, m.peer.SendTo())
	if err == nil {
		m.s.rtcpSent.Add(1)
	}
	return err
}

// startSession gives a speaker the RTCP side of its incoming stream:
// receiver reports, NACKs and statistics through pion/interceptor.
func (m *member) startSession() {
	if m.session != nil {
		return
	}
	sess, err := feedback.NewSpeakerSession(feedback.SpeakerConfig{
		LocalSSRC:   m.part.SSRC(),
		WriteRTCP:   m.WriteRTCP,
		PayloadType: m.payloadType(),
		RTT:         m.tracker.RTT,
	})
	if err != nil {
		m.s.log.Warn("no RTCP session for speaker", "participant", m.part.ID(), "err", err)
		return
	}
	m.session = sess
}

func (m *member) payloadType() uint8 { return m.part.PayloadType() }

func (m *member) stopSession() {
	if m.session != nil {
		_ = m.session.Close()
		m.session = nil
	}
}

// sendReports sends the sender reports due now in every room; Run calls it
// every srPeriod. It runs apart from the rooms' ticks because reading a
// stream's counters takes its room's lock.
func (s *Server) sendReports(now time.Time) {
	for _, r := range s.roomList() {
		r.mu.Lock()
		r.srs.Tick(now, r.streams)
		r.mu.Unlock()
	}
}

// srPeriod is how often sender reports go out; each time, the share of
// every room's streams due since (5 s per stream by default).
const srPeriod = 50 * time.Millisecond

// onRTP feeds a speaker's packets to its RTCP session.
func (s *Server) onRTP(peer *rtpudp.Peer, pkt []byte) {
	m, _ := peer.Attached().(*member)
	if m == nil {
		return
	}
	if sess := m.speakerSession(); sess != nil {
		sess.OnRTP(pkt)
	}
}

func (m *member) speakerSession() *feedback.SpeakerSession {
	m.s.sessMu.RLock()
	defer m.s.sessMu.RUnlock()
	return m.session
}

// onRTCP takes RTCP from a declared address: the participant's reports on
// the stream we send it (loss, jitter, RTT, NACKs), and a speaker's sender
// reports for its session. Malformed datagrams are dropped and counted.
func (s *Server) onRTCP(peer *rtpudp.Peer, pkt []byte) {
	m, _ := peer.Attached().(*member)
	if m == nil {
		s.rtcpUnbound.Add(1) // declared, still joining
		return
	}
	// rtcpScratch is only touched here, on the transport's one reading
	// goroutine.
	if err := m.tracker.Receive(pkt, time.Now(), m.part.SSRC(), &s.rtcpScratch); err != nil {
		s.rtcpMalformed.Add(1)
		return
	}
	s.rtcpAccepted.Add(1)
	rep := &s.rtcpScratch
	s.nacksReceived.Add(uint64(rep.NACKCount + rep.NACKsDropped))
	if rep.HasReport {
		// The participant's tier follows what it reports of our stream.
		m.part.ReportReception(engine.Reception{
			FractionLost: rep.FractionLost,
			Jitter:       time.Duration(rep.Jitter * float64(time.Second)),
			RTT:          m.tracker.RTT(),
		})
	}
	if rep.NACKCount > 0 && m.part.Retransmit(rep.NACKed()) > 0 {
		m.room.batch.Flush() // a retransmission is late already: send it now
	}
	if sess := m.speakerSession(); sess != nil {
		sess.OnRTCP(pkt)
		if st := m.part.Stats(); st.Jitter != nil {
			// NACK only where a retransmission can arrive before its
			// play-out time.
			sess.UpdateNACK(st.Jitter.TargetDelay)
		}
	}
}

// receptionView is what a participant's RTCP reports say about its stream.
type receptionView struct {
	Reports      uint64  `json:"reports"`
	FractionLost float64 `json:"fraction_lost"`
	JitterMS     float64 `json:"jitter_ms"`
	RTTMS        float64 `json:"rtt_ms"`
	NACKs        uint64  `json:"nacks"`
}

// uplinkView is what the server measures of a speaker's incoming stream.
type uplinkView struct {
	PacketsReceived uint64  `json:"packets_received"`
	PacketsLost     int64   `json:"packets_lost"`
	JitterMS        float64 `json:"jitter_ms"`
	TargetDelayMS   float64 `json:"target_delay_ms"`
	ConcealedMS     float64 `json:"concealed_ms"`
	NACKsSent       uint64  `json:"nacks_sent"`
}

func (m *member) reception() *receptionView {
	st := m.tracker.Stats()
	if st.Reports == 0 {
		return nil
	}
	return &receptionView{
		Reports: st.Reports, FractionLost: st.FractionLost,
		JitterMS: st.Jitter * 1e3, RTTMS: float64(st.RTT) / 1e6, NACKs: st.NACKs,
	}
}

func (m *member) uplink(js *engine.ParticipantStats) *uplinkView {
	if js.Jitter == nil {
		return nil
	}
	j := js.Jitter
	u := &uplinkView{
		PacketsReceived: j.PacketsReceived, PacketsLost: j.PacketsLost,
		JitterMS: j.Jitter * 1e3, TargetDelayMS: float64(j.TargetDelay) / 1e6,
		ConcealedMS: float64(j.ConcealedSamples) / 48,
	}
	if sess := m.speakerSession(); sess != nil {
		u.NACKsSent = sess.Stats().NACKsSent
	}
	return u
}
