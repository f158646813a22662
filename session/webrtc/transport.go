package webrtc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	pion "github.com/pion/webrtc/v4"
)

// Errors callers branch on.
var (
	// ErrBadOffer wraps every reason an SDP offer is refused: it does not
	// parse, has no audio section, or offers no Opus.
	ErrBadOffer = errors.New("webrtc: unusable SDP offer")
	ErrClosed   = errors.New("webrtc: transport closed")
)

// OpusPayloadType is the payload type the transport offers for Opus; an
// offer's own payload type wins (the answer echoes it).
const OpusPayloadType = 111

// REDPayloadType is the payload type the transport offers for RED (RFC
// 2198) around Opus, as Chrome does; it is negotiated when the offer has
// audio/red with fmtp 111/111.
const REDPayloadType = 63

const mimeTypeRED = "audio/red"

// AudioLevelURI is the RFC 6464 client-to-mixer audio-level header
// extension, which answers accept when offered (Chrome offers it).
const AudioLevelURI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"

// Config holds a transport's settings. The zero value works: every zero
// field takes the default written beside it.
type Config struct {
	UDPAddr string // ICE UDP mux address, every peer on it; default "127.0.0.1:5010"
	// TCPAddr, when set, is a passive ICE-TCP address for clients whose
	// networks block UDP; default "" (no ICE-TCP).
	TCPAddr string
	// PublicIPs replace the host candidates' addresses in answers, for a
	// server behind a 1:1 NAT or load balancer; default none.
	PublicIPs []string
	// DisconnectedTimeout is how long without a packet from a peer before
	// its ICE state is "disconnected"; default 5 s.
	DisconnectedTimeout time.Duration
	// FailedTimeout is how long "disconnected" lasts before consent is
	// deemed lost and the peer fails; default 25 s.
	FailedTimeout time.Duration
	// KeepAlive is the interval of ICE consent checks; default 2 s.
	KeepAlive time.Duration
	// OnFailed is called once, on its own goroutine, when a peer's
	// connection fails (ICE consent lost): remove its member with the
	// reason "timeout". Default nil: the peer just stops.
	OnFailed func(*Peer)
	// OnClosed is called once, on its own goroutine, when the remote end
	// closes the connection (DTLS close_notify) before Peer.Close; default
	// nil.
	OnClosed func(*Peer)
	// LoggerFactory is pion's logger; default pion's, errors only.
	LoggerFactory logging.LoggerFactory
}

func (c Config) withDefaults() Config {
	if c.UDPAddr == "" {
		c.UDPAddr = "127.0.0.1:5010"
	}
	if c.DisconnectedTimeout <= 0 {
		c.DisconnectedTimeout = 5 * time.Second
	}
	if c.FailedTimeout <= 0 {
		c.FailedTimeout = 25 * time.Second
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 2 * time.Second
	}
	if c.LoggerFactory == nil {
		c.LoggerFactory = logging.NewDefaultLoggerFactory()
	}
	return c
}

// Transport serves WebRTC peers on one UDP port (and optionally one TCP
// port). Its methods are safe for concurrent use.
type Transport struct {
	cfg     Config
	se      pion.SettingEngine // each peer's API starts from it (fastpath.go)
	me      *pion.MediaEngine
	udp     *sendConn
	udpMux  ice.UDPMux
	tcp     net.Listener // nil without ICE-TCP
	tcpMux  ice.TCPMux
	udpAddr netip.AddrPort
	tcpAddr netip.AddrPort

	mu     sync.Mutex
	peers  map[*Peer]struct{}
	closed bool

	stats counters
}

// Listen opens the transport's sockets.
func Listen(cfg Config) (*Transport, error) {
	cfg = cfg.withDefaults()
	t := &Transport{cfg: cfg, peers: map[*Peer]struct{}{}}
	uap, err := netip.ParseAddrPort(cfg.UDPAddr)
	if err != nil {
		return nil, fmt.Errorf("webrtc: UDP address %q: %w", cfg.UDPAddr, err)
	}
	udp, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(uap))
	if err != nil {
		return nil, fmt.Errorf("webrtc: listen UDP %s: %w", cfg.UDPAddr, err)
	}
	t.udp = newSendConn(udp, &t.stats)
	t.udpAddr = udp.LocalAddr().(*net.UDPAddr).AddrPort()
	log := cfg.LoggerFactory.NewLogger("handsup-webrtc")
	t.udpMux = pion.NewICEUDPMux(log, t.udp)

	var se pion.SettingEngine
	se.LoggerFactory = cfg.LoggerFactory
	se.SetICEUDPMux(t.udpMux)
	networks := []pion.NetworkType{pion.NetworkTypeUDP4, pion.NetworkTypeUDP6}
	loopback := uap.Addr().IsLoopback()
	if cfg.TCPAddr != "" {
		tap, err := netip.ParseAddrPort(cfg.TCPAddr)
		if err != nil {
			_ = t.closeSockets()
			return nil, fmt.Errorf("webrtc: TCP address %q: %w", cfg.TCPAddr, err)
		}
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(tap))
		if err != nil {
			_ = t.closeSockets()
			return nil, fmt.Errorf("webrtc: listen TCP %s: %w", cfg.TCPAddr, err)
		}
		t.tcp = ln
		t.tcpAddr = ln.Addr().(*net.TCPAddr).AddrPort()
		t.tcpMux = pion.NewICETCPMux(log, ln, 8)
		se.SetICETCPMux(t.tcpMux)
		networks = append(networks, pion.NetworkTypeTCP4, pion.NetworkTypeTCP6)
		loopback = loopback || tap.Addr().IsLoopback()
	}
	se.SetNetworkTypes(networks)
	// A server on a loopback address offers its loopback candidates (tests,
	// a proxy on the same host); otherwise pion leaves them out.
	se.SetIncludeLoopbackCandidate(loopback)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(cfg.DisconnectedTimeout, cfg.FailedTimeout, cfg.KeepAlive)
	se.SetLite(false)
	// The transport is the DTLS server (the answer says setup:passive) on
	// the suites whose keys keyCapture derives; see fastpath.go.
	if err := se.SetAnsweringDTLSRole(pion.DTLSRoleServer); err != nil {
		_ = t.closeSockets()
		return nil, err
	}
	se.SetDTLSCipherSuites(cipherSuites...)
	se.SetSRTPProtectionProfiles(srtpProfiles...)
	if len(cfg.PublicIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(pion.ICEAddressRewriteRule{
			External: cfg.PublicIPs, AsCandidateType: pion.ICECandidateTypeHost,
		}); err != nil {
			_ = t.closeSockets()
			return nil, fmt.Errorf("webrtc: public IPs %v: %w", cfg.PublicIPs, err)
		}
	}

	var me pion.MediaEngine
	if err := me.RegisterCodec(pion.RTPCodecParameters{
		RTPCodecCapability: pion.RTPCodecCapability{
			MimeType: pion.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1",
		},
		PayloadType: OpusPayloadType,
	}, pion.RTPCodecTypeAudio); err != nil {
		_ = t.closeSockets()
		return nil, fmt.Errorf("webrtc: register Opus: %w", err)
	}
	if err := me.RegisterCodec(pion.RTPCodecParameters{
		RTPCodecCapability: pion.RTPCodecCapability{
			MimeType: mimeTypeRED, ClockRate: 48000, Channels: 2, SDPFmtpLine: "111/111",
		},
		PayloadType: REDPayloadType,
	}, pion.RTPCodecTypeAudio); err != nil {
		_ = t.closeSockets()
		return nil, fmt.Errorf("webrtc: register RED: %w", err)
	}
	if err := me.RegisterHeaderExtension(pion.RTPHeaderExtensionCapability{URI: AudioLevelURI},
		pion.RTPCodecTypeAudio); err != nil {
		_ = t.closeSockets()
		return nil, fmt.Errorf("webrtc: register the audio-level extension: %w", err)
	}
	t.se, t.me = se, &me
	return t, nil
}

// UDPAddr is the address of the ICE UDP mux.
func (t *Transport) UDPAddr() netip.AddrPort { return t.udpAddr }

// TCPAddr is the passive ICE-TCP address; the zero value without ICE-TCP.
func (t *Transport) TCPAddr() netip.AddrPort { return t.tcpAddr }

// Flush sends the media the peers queued since the last Flush, with as
// few sendmmsg calls as fit. A room's engine.RoomConfig.AfterTick calls it
// (with the other transports' flushes), as it does rtpudp.Batch.Flush:
// until then, what its tick sent over UDP waits. Peers over ICE-TCP send
// at once and need no Flush.
func (t *Transport) Flush() { t.udp.Flush() }

// Peers is how many peers are open.
func (t *Transport) Peers() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.peers)
}

// Answer takes a client's SDP offer with one audio section and returns the
// peer that serves it and the answer, with every candidate gathered (no
// trickle needed). The peer sends its stream on that section when the
// offer lets it receive (sendrecv or recvonly) and hands what the client
// sends to the receiver bound later (session.Room.Join binds its member).
// Errors in the offer wrap ErrBadOffer; ctx bounds the gathering.
func (t *Transport) Answer(ctx context.Context, offer string) (*Peer, string, error) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return nil, "", ErrClosed
	}
	p := &Peer{t: t, track: &localTrack{}}
	p.send.t = t
	pc, err := t.newAPI(p).NewPeerConnection(pion.Configuration{})
	if err != nil {
		return nil, "", fmt.Errorf("webrtc: new peer connection: %w", err)
	}
	p.pc = pc
	pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(p.onPair)
	pc.OnTrack(p.onTrack)
	pc.OnConnectionStateChange(p.onState)
	fail := func(err error) (*Peer, string, error) {
		_ = pc.Close()
		t.stats.offersRefused.Add(1)
		return nil, "", err
	}
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrBadOffer, err))
	}
	audio := 0
	for _, tr := range pc.GetTransceivers() {
		if tr.Kind() == pion.RTPCodecTypeAudio {
			audio++
		}
	}
	if audio != 1 {
		return fail(fmt.Errorf("%w: %d audio sections, want 1", ErrBadOffer, audio))
	}
	sender, err := pc.AddTrack(p.track)
	if err != nil {
		return fail(fmt.Errorf("webrtc: add track: %w", err))
	}
	params := sender.GetParameters()
	if len(params.Encodings) == 0 {
		return fail(fmt.Errorf("webrtc: sender has no encoding"))
	}
	p.ssrc = uint32(params.Encodings[0].SSRC)
	opus, ok := findOpus(params.Codecs)
	if !ok {
		return fail(fmt.Errorf("%w: no Opus at 48 kHz", ErrBadOffer))
	}
	p.pt = uint8(opus.PayloadType)
	for _, c := range params.Codecs {
		if strings.EqualFold(c.MimeType, mimeTypeRED) && c.ClockRate == 48000 {
			p.redPT = uint8(c.PayloadType)
		}
	}
	for _, h := range params.HeaderExtensions {
		if h.URI == AudioLevelURI && h.ID > 0 && h.ID < 256 {
			p.levelExt = uint8(h.ID)
		}
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", ErrBadOffer, err))
	}
	gathered := pion.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail(fmt.Errorf("%w: %w", ErrBadOffer, err))
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(fmt.Errorf("webrtc: gathering candidates: %w", ctx.Err()))
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return fail(ErrClosed)
	}
	t.peers[p] = struct{}{}
	t.mu.Unlock()
	t.stats.peersOpened.Add(1)
	go p.readRTCP(sender)
	return p, pc.LocalDescription().SDP, nil
}

// findOpus is the negotiated Opus codec at 48 kHz.
func findOpus(codecs []pion.RTPCodecParameters) (pion.RTPCodecParameters, bool) {
	for _, c := range codecs {
		if strings.EqualFold(c.MimeType, pion.MimeTypeOpus) && c.ClockRate == 48000 {
			return c, true
		}
	}
	return pion.RTPCodecParameters{}, false
}

// forget drops a closed peer.
func (t *Transport) forget(p *Peer) {
	t.mu.Lock()
	delete(t.peers, p)
	t.mu.Unlock()
}

// Close closes every peer and the sockets.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	peers := make([]*Peer, 0, len(t.peers))
	for p := range t.peers {
		peers = append(peers, p)
	}
	t.mu.Unlock()
	for _, p := range peers {
		_ = p.Close()
	}
	return t.closeSockets()
}

func (t *Transport) closeSockets() error {
	var errs []error
	if t.udpMux != nil {
		errs = append(errs, t.udpMux.Close())
	}
	if t.udp != nil {
		_ = t.udp.Close() // the mux closed it already, most often
	}
	if t.tcpMux != nil {
		errs = append(errs, t.tcpMux.Close())
	}
	if t.tcp != nil {
		_ = t.tcp.Close()
	}
	return errors.Join(errs...)
}

type counters struct {
	peersOpened, offersRefused, failed, renegotiations  atomic.Uint64
	rtpSent, sendErrors, notReady, badHeader            atomic.Uint64
	datagramsOut, syscalls, slowPeers, fastRTP          atomic.Uint64
	rtpIn, rtcpIn, unbound, rtcpSent, rtcpSendMalformed atomic.Uint64
}

// Flushed counts what a send batch's sendmmsg calls did.
func (c *counters) Flushed(sent, syscalls, failed int) {
	c.datagramsOut.Add(uint64(sent))
	c.syscalls.Add(uint64(syscalls))
	c.sendErrors.Add(uint64(failed))
}

// Stats counts a transport's peers and packets.
type Stats struct {
	PeersOpened   uint64 // answers given
	OffersRefused uint64 // offers that did not lead to a peer
	PeersFailed   uint64 // peers whose connection failed (ICE consent lost)
	// Renegotiations counts offers answered on open peers (ICE restarts).
	Renegotiations uint64
	RTPSent        uint64 // packets handed to SRTP
	// FastRTP counts, of RTPSent, the packets the peers' own SRTP
	// contexts protected (fastpath.go), the rest going through pion.
	FastRTP    uint64
	SendErrors uint64 // packets SRTP or the socket refused
	// BatchedOut counts SRTP media datagrams sent in batches over UDP, in
	// SendSyscalls sendmmsg calls.
	BatchedOut, SendSyscalls uint64
	// SlowPeers counts connected peers whose stream takes pion's own
	// write path: their DTLS keys could not be captured (fastpath.go).
	SlowPeers uint64
	// NotReady counts packets dropped because the peer's connection was
	// not up yet (or no longer).
	NotReady  uint64
	BadHeader uint64 // packets from the engine whose header did not parse
	RTPIn     uint64 // RTP packets received from peers
	RTCPIn    uint64 // compound RTCP packets received from peers
	// Unbound counts packets received from a peer with no receiver bound.
	Unbound       uint64
	RTCPSent      uint64 // RTCP packets sent
	RTCPMalformed uint64 // RTCP packets from the session that did not parse, not sent
	Open          int    // peers open now
}

// Stats reads the counters.
func (t *Transport) Stats() Stats {
	s := &t.stats
	return Stats{
		PeersOpened: s.peersOpened.Load(), OffersRefused: s.offersRefused.Load(),
		PeersFailed: s.failed.Load(), Renegotiations: s.renegotiations.Load(), RTPSent: s.rtpSent.Load() + s.fastRTP.Load(), SendErrors: s.sendErrors.Load(),
		NotReady: s.notReady.Load(), BadHeader: s.badHeader.Load(), RTPIn: s.rtpIn.Load(),
		RTCPIn: s.rtcpIn.Load(), Unbound: s.unbound.Load(), RTCPSent: s.rtcpSent.Load(),
		RTCPMalformed: s.rtcpSendMalformed.Load(), Open: t.Peers(),
		BatchedOut: s.datagramsOut.Load(), SendSyscalls: s.syscalls.Load(), SlowPeers: s.slowPeers.Load(), FastRTP: s.fastRTP.Load(),
	}
}
