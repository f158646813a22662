package webrtc

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	pion "github.com/pion/webrtc/v4"

	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/session"
)

// maxPacket bounds an RTP or RTCP packet read from a peer.
const maxPacket = 1500

// Peer is one WebRTC participant: its PeerConnection and the session.Link
// the session binds to its member. Its methods are safe for concurrent
// use.
type Peer struct {
	send  sendState // first: what a tick's send reads (fastpath.go)
	t     *Transport
	pc    *pion.PeerConnection
	track *localTrack
	ssrc  uint32 // the SSRC the answer announces for the peer's stream
	pt    uint8  // the negotiated Opus payload type
	redPT uint8  // the negotiated RED payload type; 0 without RED
	// levelExt is the negotiated id of the RFC 6464 audio-level header
	// extension; 0 when the offer had none.
	levelExt uint8

	recv atomic.Pointer[bound]

	mu  sync.Mutex // guards hdr
	hdr rtp.Header // the engine's header, parsed for pion's writer

	keys keyCapture // the DTLS secrets, until the fast path starts

	closed, reported atomic.Bool
	negotiating      sync.Mutex // one offer/answer at a time
}

// bound boxes a receiver for the atomic pointer.
type bound struct{ r session.Receiver }

// SSRC is the SSRC the answer announced for the peer's stream: the
// participant's engine.ParticipantConfig.SSRC.
func (p *Peer) SSRC() uint32 { return p.ssrc }

// PayloadType is the Opus payload type the offer and answer agreed on.
func (p *Peer) PayloadType() uint8 { return p.pt }

// REDPayloadType is the RED (RFC 2198) payload type the offer and answer
// agreed on; 0 when the offer had no RED.
func (p *Peer) REDPayloadType() uint8 { return p.redPT }

// AudioLevelExtID is the id of the RFC 6464 audio-level header extension
// the offer and answer agreed on; 0 when the offer had none.
func (p *Peer) AudioLevelExtID() uint8 { return p.levelExt }

// Configure sets what the negotiation decided in a participant's config:
// its output SSRC, Opus payload type, RED payload type (the engine wraps
// its stream in RED when set) and audio-level extension id (the engine
// reads the levels the client reports). Call it before session.Room.Join.
func (p *Peer) Configure(cfg *engine.ParticipantConfig) {
	cfg.SSRC = p.ssrc
	cfg.PayloadType = p.pt
	cfg.REDPayloadType = p.redPT
	cfg.AudioLevelExtID = p.levelExt
}

// ConnectionState is the PeerConnection's state.
func (p *Peer) ConnectionState() pion.PeerConnectionState { return p.pc.ConnectionState() }

// PeerConnection is the pion connection, for what this package does not
// cover (statistics, renegotiation).
func (p *Peer) PeerConnection() *pion.PeerConnection { return p.pc }

// Bind sets the receiver of what the peer sends; nil unbinds.
func (p *Peer) Bind(r session.Receiver) {
	if r == nil {
		p.recv.Store(nil)
		return
	}
	p.recv.Store(&bound{r})
}

func (p *Peer) receiver() session.Receiver {
	if b := p.recv.Load(); b != nil {
		return b.r
	}
	return nil
}

// WriteRTP sends one packet of the participant's stream through SRTP: the
// engine's header, parsed into a reused rtp.Header, around the room's
// shared payload. Over UDP the protected packet waits in the transport's
// batch for Transport.Flush (the room's AfterTick); over ICE-TCP it leaves
// at once. It satisfies engine.Sink; a packet sent before the connection
// is up is dropped and counted.
func (p *Peer) WriteRTP(header, payload []byte) error {
	if ok, err := p.writeFast(header, payload); ok {
		return err
	}
	w := p.track.writer()
	if w == nil {
		p.t.stats.notReady.Add(1)
		return nil
	}
	p.mu.Lock()
	if _, err := p.hdr.Unmarshal(header); err != nil {
		p.mu.Unlock()
		p.t.stats.badHeader.Add(1)
		return err
	}
	_, err := w.WriteRTP(&p.hdr, payload)
	p.mu.Unlock()
	if err != nil {
		p.t.stats.sendErrors.Add(1)
		return err
	}
	p.t.stats.rtpSent.Add(1)
	return nil
}

// Flush sends what the transport queued (Transport.Flush): a
// retransmission leaves at once. It makes the peer a session.Flusher.
func (p *Peer) Flush() { p.t.Flush() }

// WriteRTCP sends one compound RTCP packet through SRTCP.
func (p *Peer) WriteRTCP(pkt []byte) error {
	pkts, err := rtcp.Unmarshal(pkt)
	if err != nil {
		p.t.stats.rtcpSendMalformed.Add(1)
		return err
	}
	if err := p.pc.WriteRTCP(pkts); err != nil {
		p.t.stats.sendErrors.Add(1)
		return err
	}
	p.t.stats.rtcpSent.Add(1)
	return nil
}

// Renegotiate answers a new offer from the participant on the same
// connection: an ICE restart (new credentials and candidates, after a
// network change) or a change of direction: a WHEP listener promoted to
// the stage offers its audio section sendrecv, the answer is sendrecv
// (pion turns the answer's sendonly transceiver sendrecv) and what it
// sends then reaches the bound receiver. The answer comes with every
// candidate gathered. The participant's stream runs on: the same SSRC, and
// sequence numbers and timestamps continuing, since DTLS-SRTP and the
// engine's output are untouched. Errors in the offer wrap ErrBadOffer.
func (p *Peer) Renegotiate(ctx context.Context, offer string) (string, error) {
	p.negotiating.Lock()
	defer p.negotiating.Unlock()
	if p.closed.Load() {
		return "", ErrClosed
	}
	if err := p.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer}); err != nil {
		p.t.stats.offersRefused.Add(1)
		return "", fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		p.t.stats.offersRefused.Add(1)
		return "", fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	gathered := pion.GatheringCompletePromise(p.pc)
	if err := p.pc.SetLocalDescription(answer); err != nil {
		p.t.stats.offersRefused.Add(1)
		return "", fmt.Errorf("%w: %w", ErrBadOffer, err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", fmt.Errorf("webrtc: gathering candidates: %w", ctx.Err())
	}
	p.t.stats.renegotiations.Add(1)
	return p.pc.LocalDescription().SDP, nil
}

// Close unbinds the peer and closes its PeerConnection.
func (p *Peer) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	p.Bind(nil)
	p.send.mu.Lock()
	p.send.route = netip.AddrPort{} // the fast path stops: nothing more leaves for the peer
	p.send.mu.Unlock()
	p.t.forget(p)
	return p.pc.Close()
}

// onTrack reads what the participant sends, on pion's goroutine for the
// track: RTP raw to the bound receiver, and the RTCP of the track's
// receiver (the speaker's sender reports) on one more goroutine.
func (p *Peer) onTrack(tr *pion.TrackRemote, r *pion.RTPReceiver) {
	go p.readRTCP(r)
	buf := make([]byte, maxPacket)
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		p.t.stats.rtpIn.Add(1)
		if rc := p.receiver(); rc != nil {
			rc.ReceiveRTP(buf[:n])
		} else {
			p.t.stats.unbound.Add(1)
		}
	}
}

// rtcpSource is an RTPSender or RTPReceiver: where a peer's RTCP comes
// from.
type rtcpSource interface {
	Read(b []byte) (int, interceptor.Attributes, error)
}

// readRTCP hands what src reads raw to the bound receiver until src ends:
// the sender's RTCP is about the peer's stream (receiver reports, NACKs),
// the receiver's about the participant's own (its sender reports).
func (p *Peer) readRTCP(src rtcpSource) {
	buf := make([]byte, maxPacket)
	for {
		n, _, err := src.Read(buf)
		if err != nil {
			return
		}
		p.rtcp(buf[:n])
	}
}

func (p *Peer) rtcp(pkt []byte) {
	p.t.stats.rtcpIn.Add(1)
	if rc := p.receiver(); rc != nil {
		rc.ReceiveRTCP(pkt)
	} else {
		p.t.stats.unbound.Add(1)
	}
}

// onState reports a failed connection (ICE consent lost) or one the remote
// end closed, once.
func (p *Peer) onState(s pion.PeerConnectionState) {
	var cb func(*Peer)
	switch s {
	case pion.PeerConnectionStateConnected:
		p.startFastPath()
		return
	case pion.PeerConnectionStateFailed:
		p.t.stats.failed.Add(1)
		cb = p.t.cfg.OnFailed
	case pion.PeerConnectionStateClosed:
		if p.closed.Load() {
			return // closed by us
		}
		cb = p.t.cfg.OnClosed
	default:
		return
	}
	if p.reported.Swap(true) || cb == nil {
		return
	}
	go cb(p)
}

// localTrack is the peer's outgoing audio track: Bind keeps pion's writer,
// which WriteRTP feeds directly.
type localTrack struct {
	w atomic.Pointer[trackWriter]
}

type trackWriter struct{ w pion.TrackLocalWriter }

func (l *localTrack) writer() pion.TrackLocalWriter {
	if tw := l.w.Load(); tw != nil {
		return tw.w
	}
	return nil
}

// Bind keeps the connection's writer and picks Opus.
func (l *localTrack) Bind(ctx pion.TrackLocalContext) (pion.RTPCodecParameters, error) {
	c, ok := findOpus(ctx.CodecParameters())
	if !ok {
		return pion.RTPCodecParameters{}, pion.ErrUnsupportedCodec
	}
	l.w.Store(&trackWriter{ctx.WriteStream()})
	return c, nil
}

// Unbind drops the writer.
func (l *localTrack) Unbind(pion.TrackLocalContext) error {
	l.w.Store(nil)
	return nil
}

func (l *localTrack) ID() string              { return "audio" }
func (l *localTrack) RID() string             { return "" }
func (l *localTrack) StreamID() string        { return "handsup" }
func (l *localTrack) Kind() pion.RTPCodecType { return pion.RTPCodecTypeAudio }
