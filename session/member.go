package session

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/feedback"
)

// Link is a participant's connection over some transport: where its
// output stream and RTCP go, and where its incoming packets come from.
// session/rtpudp's Peer is one.
type Link interface {
	// WriteRTP sends one packet of the participant's output stream; it is
	// the participant's engine.Sink and must not block on the network.
	engine.Sink
	// WriteRTCP sends one RTCP packet to the participant now.
	WriteRTCP(pkt []byte) error
	// Bind makes the link hand every packet the participant sends to r;
	// Bind(nil) stops it.
	Bind(r Receiver)
	// Close frees the link's resources; the session calls it when the
	// participant leaves.
	Close() error
}

// Flusher is a Link that queues packets: Flush sends them now. A member
// flushes after answering a NACK, since a retransmission is late already.
type Flusher interface{ Flush() }

// Receiver takes the packets a link receives from its participant, on the
// link's reading goroutine; it does not keep pkt. Member is one.
type Receiver interface {
	ReceiveRTP(pkt []byte)
	ReceiveRTCP(pkt []byte)
}

// Member is a participant of a Room bound to its Link. Its methods are
// safe for concurrent use.
type Member struct {
	room    *Room
	id      string
	link    Link
	tracker feedback.ListenerTracker // what its reports say of the stream it gets

	// heard counts the packets it sent; Sweep alone reads it into seen and
	// lastHeard, the time it last saw heard move.
	heard     atomic.Uint64
	seen      uint64
	lastHeard time.Time

	mu      sync.Mutex // guards part's binding, gone and speaker changes
	part    *engine.Participant
	gone    bool
	speaker atomic.Pointer[feedback.SpeakerSession] // nil unless its role contributes
}

// ID is the participant's id.
func (m *Member) ID() string { return m.id }

// Participant is the engine participant; nil while Join is binding it.
func (m *Member) Participant() *engine.Participant {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.part
}

// Link is the member's link.
func (m *Member) Link() Link { return m.link }

// Leave takes the participant out of the room; its link is closed.
func (m *Member) Leave() {
	if p := m.Participant(); p != nil {
		p.Leave()
	}
}

// ReceiveRTP takes one RTP packet from the participant: the engine plays
// it (or counts why not), and a speaker's RTCP side learns of it for its
// receiver reports and NACKs.
func (m *Member) ReceiveRTP(pkt []byte) {
	m.heard.Add(1)
	p := m.part // set before the link was bound, never changed after
	if p == nil {
		return
	}
	_ = p.WriteRTP(pkt) // the engine counts its own drops
	if s := m.speaker.Load(); s != nil {
		s.OnRTP(pkt)
	}
}

// ReceiveRTCP takes one compound RTCP packet from the participant: its
// receiver reports move it between the room's tiers, its NACKs are
// answered from the room's history, and a speaker's sender reports go to
// its RTCP side. A packet that does not parse is counted and dropped.
func (m *Member) ReceiveRTCP(pkt []byte) {
	m.heard.Add(1)
	p := m.part
	if p == nil {
		return
	}
	st := &m.room.m.st
	rep := m.room.m.reports.Get().(*feedback.ListenerReport)
	defer m.room.m.reports.Put(rep)
	if err := m.tracker.Receive(pkt, m.room.m.cfg.Now(), p.SSRC(), rep); err != nil {
		st.rtcpMalformed.Add(1)
		return
	}
	st.rtcpIn.Add(1)
	st.nacksIn.Add(uint64(rep.NACKCount + rep.NACKsDropped))
	if rep.HasReport {
		// The participant's tier follows what it reports of our stream.
		p.ReportReception(engine.Reception{
			FractionLost: rep.FractionLost,
			Jitter:       time.Duration(rep.Jitter * float64(time.Second)),
			RTT:          m.tracker.RTT(),
		})
	}
	if rep.NACKCount > 0 && p.Retransmit(rep.NACKed()) > 0 {
		if f, ok := m.link.(Flusher); ok {
			f.Flush()
		}
	}
	if s := m.speaker.Load(); s != nil {
		s.OnRTCP(pkt)
		if js := p.Stats().Jitter; js != nil {
			// NACK only where a retransmission can arrive before its
			// play-out time.
			s.UpdateNACK(js.TargetDelay)
		}
	}
}

// Timeout removes the participant with reason "timeout" (the engine's
// left event carries it), counted in Stats.TimedOut. Transports that see a
// participant go call it: a WebRTC link whose ICE consent checks fail (RFC
// 7675), a socket that reports the client unreachable. It reports whether
// the participant was still there.
func (m *Member) Timeout() bool {
	p := m.Participant()
	if cur, ok := m.room.Participant(m.id); p == nil || !ok || cur != p { // gone, or the id rejoined
		return false
	}
	if m.room.Kick(m.id, ReasonTimeout) != nil {
		return false
	}
	m.room.m.st.timedOut.Add(1)
	return true
}

// idle reports whether the member, having sent something once, has sent
// nothing for timeout up to now. Only Manager.Sweep calls it.
func (m *Member) idle(now time.Time, timeout time.Duration) bool {
	h := m.heard.Load()
	if h != m.seen || m.lastHeard.IsZero() {
		m.seen, m.lastHeard = h, now
		return false
	}
	return h > 0 && now.Sub(m.lastHeard) >= timeout
}

// Reception is what the participant's receiver reports say about the
// stream sent to it; Reports is 0 until the first one.
func (m *Member) Reception() feedback.ListenerStats { return m.tracker.Stats() }

// Uplink is the RTCP side's view of a speaker's incoming stream; ok is
// false while the member's role does not contribute.
func (m *Member) Uplink() (st feedback.SpeakerStats, ok bool) {
	s := m.speaker.Load()
	if s == nil {
		return feedback.SpeakerStats{}, false
	}
	return s.Stats(), true
}

// WriteRTCP sends one RTCP packet to the participant through its link,
// counted in Stats.
func (m *Member) WriteRTCP(pkt []byte) error {
	st := &m.room.m.st
	if err := m.link.WriteRTCP(pkt); err != nil {
		st.rtcpSendErrors.Add(1)
		return err
	}
	st.rtcpSent.Add(1)
	return nil
}

// syncSpeakerLocked starts the RTCP side of the participant's incoming
// stream while its role contributes, and stops it when it no longer does.
func (m *Member) syncSpeakerLocked() {
	if m.part == nil || m.gone {
		return
	}
	cur := m.speaker.Load()
	want := m.part.Role().Contributes()
	switch {
	case want && cur == nil:
		s, err := feedback.NewSpeakerSession(feedback.SpeakerConfig{
			LocalSSRC:   m.part.SSRC(),
			WriteRTCP:   m.WriteRTCP,
			PayloadType: m.part.PayloadType(),
			RTT:         m.tracker.RTT,
		})
		if err != nil {
			m.room.m.st.speakerSessionErrors.Add(1)
			m.room.m.cfg.Logger.Warn("no RTCP session for speaker", "room", m.room.ID(), "participant", m.id, "err", err)
			return
		}
		m.speaker.Store(s)
		m.room.setSpeaker(s, true)
	case !want && cur != nil:
		m.speaker.Store(nil)
		m.room.setSpeaker(cur, false)
		_ = cur.Close()
	}
}

// leave stops everything the member runs and closes its link.
func (m *Member) leave() {
	m.mu.Lock()
	if m.gone {
		m.mu.Unlock()
		return
	}
	m.gone = true
	if s := m.speaker.Swap(nil); s != nil {
		m.room.setSpeaker(s, false)
		_ = s.Close()
	}
	m.mu.Unlock()
	m.link.Bind(nil)
	_ = m.link.Close()
}

// srStream makes a member a stream the room's sender-report scheduler
// reports on.
type srStream struct{ m *Member }

func (s srStream) SenderInfo(time.Time) (ssrc, rtpTS, packets, octets uint32) {
	ssrc, ts, p, o := s.m.part.OutputInfo()
	return ssrc, ts, uint32(p), uint32(o)
}

func (s srStream) SenderReports() *feedback.SRHistory { return s.m.tracker.SenderReports() }

func (s srStream) WriteRTCP(pkt []byte) error { return s.m.WriteRTCP(pkt) }
