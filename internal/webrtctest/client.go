// Package webrtctest is a pion/webrtc client for handsup's tests: it
// offers one Opus audio section, sends a tone encoded with codec.Encoder
// in real time, and decodes what it receives with codec.Decoder, as a
// browser would over loopback.
package webrtctest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/red"
	handsupwebrtc "github.com/handsup-audio/handsup/session/webrtc"
)

// Quiet is a pion logger factory that logs nothing: tests close sockets
// under pion's feet on purpose.
var Quiet logging.LoggerFactory = &logging.DefaultLoggerFactory{
	Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled}

// Options says what a client does; the zero value receives only, over
// UDP.
type Options struct {
	// Send offers sendrecv and sends what Speak gives; default recvonly
	// (SendOffer turns sending on later).
	Send bool
	TCP  bool // gather only ICE-TCP candidates (active); default UDP only
	// Conn, when set, is the UDP socket ICE runs on (through a UDP mux):
	// wrap one to make the client go silent. Default: sockets pion opens.
	Conn net.PacketConn
	// RED offers audio/red (PT 63, fmtp 111/111) beside Opus, as Chrome
	// does, and unwraps the RED it receives; default Opus alone.
	RED bool
	// AudioLevel offers the RFC 6464 audio-level header extension, as
	// Chrome does, and puts the level SetReportedLevel gives (default
	// voice at -25 dBov) in every packet it sends once negotiated.
	AudioLevel bool
	// CountOnly keeps nothing of what the client receives: its socket
	// counts the server's SRTP media (Packets, Bytes) and hands pion only
	// one packet in SkimEvery to authenticate and decrypt (Verified), with
	// all of STUN, DTLS and SRTCP; the client decodes nothing and runs
	// without interceptors (it sends no receiver reports or NACKs). So
	// hundreds of clients in a benchmark cost the machine a socket read per
	// packet, and disturb the server they measure little. Default false:
	// decode and keep everything, as a browser would. It ignores Conn.
	CountOnly bool
}

// redPT is the RED payload type a client with Options.RED offers.
const redPT = 63

// Client is one test participant.
type Client struct {
	PC     *webrtc.PeerConnection
	track  *webrtc.TrackLocalStaticRTP
	sender *webrtc.RTPSender
	enc    *codec.Encoder
	// levelID is the negotiated audio-level extension id, found at the
	// first packet sent; level is the byte it carries (V bit, level).
	levelID   uint8
	level     atomic.Uint32
	wantLevel bool
	sent      int
	seq       uint16

	connected chan struct{}
	state     atomic.Value // webrtc.PeerConnectionState

	mu    sync.Mutex
	dec   *codec.Decoder
	heard []int16
	seqs  []uint16
	ssrcs map[uint32]int
	pts   map[uint8]int
	rtcp  int

	packets, bytes atomic.Uint64 // RTP received
	verified       atomic.Uint64 // with CountOnly: packets pion authenticated and decrypted
	skim           *skimConn     // with CountOnly over UDP
}

// New makes a client; Close frees it.
func New(o Options) (*Client, error) {
	var se webrtc.SettingEngine
	se.LoggerFactory = Quiet
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if o.TCP {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	var skim *skimConn
	if o.CountOnly && !o.TCP {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		skim = &skimConn{UDPConn: conn}
		o.Conn = skim
	}
	if o.Conn != nil {
		se.SetICEUDPMux(webrtc.NewICEUDPMux(Quiet.NewLogger("client"), o.Conn))
	}
	var me webrtc.MediaEngine
	if o.RED {
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "audio/red", ClockRate: 48000,
				Channels: 2, SDPFmtpLine: "111/111"},
			PayloadType: redPT,
		}, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	if o.AudioLevel {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: handsupwebrtc.AudioLevelURI},
			webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	// Like a browser: NACKs, receiver and sender reports.
	var reg interceptor.Registry
	if !o.CountOnly {
		if err := webrtc.RegisterDefaultInterceptors(&me, &reg); err != nil {
			return nil, err
		}
	}
	api := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(&me),
		webrtc.WithInterceptorRegistry(&reg))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	dec, err := codec.NewDecoder()
	if err != nil {
		return nil, err
	}
	c := &Client{PC: pc, dec: dec, connected: make(chan struct{}), ssrcs: map[uint32]int{}, pts: map[uint8]int{},
		wantLevel: o.AudioLevel}
	if skim != nil {
		skim.c, c.skim = c, skim
	}
	c.SetReportedLevel(25, true)
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		c.state.Store(s)
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(c.connected) })
		}
	})
	if o.CountOnly {
		pc.OnTrack(c.count)
	} else {
		pc.OnTrack(c.receive)
	}
	if o.Send {
		if err := c.addTrack(); err != nil {
			return nil, err
		}
	} else if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return nil, err
	}
	return c, nil
}

// addTrack adds the client's outgoing audio track: on a new sendrecv
// section, or on the receive-only section of a listener, which becomes
// sendrecv.
func (c *Client) addTrack() error {
	enc, err := codec.NewEncoder(codec.EncoderConfig{Bitrate: 64000})
	if err != nil {
		return err
	}
	track, err := webrtc.NewTrackLocalStaticRTP(
		webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
		"audio", "client")
	if err != nil {
		return err
	}
	s, err := c.PC.AddTrack(track)
	if err != nil {
		return err
	}
	c.enc, c.track, c.sender = enc, track, s
	go func() { // drain the RTCP the server sends about our stream
		buf := make([]byte, 1500)
		for {
			if _, _, err := s.Read(buf); err != nil {
				return
			}
			c.mu.Lock()
			c.rtcp++
			c.mu.Unlock()
		}
	}()
	return nil
}

// SendOffer turns a receive-only client into one that sends, as a
// listener promoted to the stage does: its audio section becomes
// sendrecv, and the offer (every candidate gathered) is to be PATCHed to
// its Location. Call it before Speak or Talk, from their goroutine.
func (c *Client) SendOffer(ctx context.Context) (string, error) {
	if c.track == nil {
		if err := c.addTrack(); err != nil {
			return "", err
		}
	}
	return c.Offer(ctx)
}

// Offer makes the client's offer, with every candidate gathered.
func (c *Client) Offer(ctx context.Context) (string, error) {
	return c.localDescription(ctx, nil)
}

// RestartOffer makes an offer that restarts ICE (new credentials).
func (c *Client) RestartOffer(ctx context.Context) (string, error) {
	return c.localDescription(ctx, &webrtc.OfferOptions{ICERestart: true})
}

func (c *Client) localDescription(ctx context.Context, opts *webrtc.OfferOptions) (string, error) {
	offer, err := c.PC.CreateOffer(opts)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(c.PC)
	if err := c.PC.SetLocalDescription(offer); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return c.PC.LocalDescription().SDP, nil
}

// RestartFrag restarts ICE and returns the new credentials and candidates
// as an application/trickle-ice-sdpfrag body, as WHIP clients PATCH them.
func (c *Client) RestartFrag(ctx context.Context) (string, error) {
	offer, err := c.RestartOffer(ctx)
	if err != nil {
		return "", err
	}
	return handsupwebrtc.ParseSDPFrag(offer).String(), nil
}

// AcceptFrag applies the server's sdpfrag answer to an ICE restart: its
// last answer with the new credentials and candidates.
func (c *Client) AcceptFrag(frag string) error {
	return c.Accept(handsupwebrtc.ParseSDPFrag(frag).Patch(c.PC.RemoteDescription().SDP))
}

// Accept applies the server's answer.
func (c *Client) Accept(answer string) error {
	return c.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer})
}

// WaitConnected waits until the connection is up.
func (c *Client) WaitConnected(ctx context.Context) error {
	select {
	case <-c.connected:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("not connected (state %v): %w", c.state.Load(), ctx.Err())
	}
}

// Speak sends the next 20 ms of a tone.
func (c *Client) Speak(freq float64) error {
	if c.track == nil {
		return errors.New("webrtctest: client does not send")
	}
	var pcm [codec.FrameSamples]int16
	signal.Tone(pcm[:], freq, 8000, c.sent*codec.FrameSamples)
	var payload [1500]byte
	n, err := c.enc.Encode(pcm[:], payload[:])
	if err != nil {
		return err
	}
	pkt := rtp.Packet{
		Header: rtp.Header{Version: 2, SequenceNumber: c.seq,
			Timestamp: uint32(c.sent * codec.FrameSamples)},
		Payload: payload[:n],
	}
	if id := c.audioLevelID(); id != 0 {
		if err := pkt.Header.SetExtension(id, []byte{byte(c.level.Load())}); err != nil {
			return err
		}
	}
	c.sent++
	c.seq++
	return c.track.WriteRTP(&pkt)
}

// SetReportedLevel sets the RFC 6464 level (0 loud to 127 silent) and
// voice activity the client's packets report, with Options.AudioLevel.
func (c *Client) SetReportedLevel(level uint8, voice bool) {
	b := uint32(level & 0x7f)
	if voice {
		b |= 0x80
	}
	c.level.Store(b)
}

// audioLevelID is the negotiated audio-level extension id; 0 without.
func (c *Client) audioLevelID() uint8 {
	if c.levelID == 0 && c.wantLevel {
		for _, h := range c.sender.GetParameters().HeaderExtensions {
			if h.URI == handsupwebrtc.AudioLevelURI {
				c.levelID = uint8(h.ID)
			}
		}
	}
	return c.levelID
}

// Talk sends frames of freq in real time, 20 ms apart.
func (c *Client) Talk(freq float64, frames int) error {
	next := time.Now()
	for range frames {
		if err := c.Speak(freq); err != nil {
			return err
		}
		next = next.Add(20 * time.Millisecond)
		time.Sleep(time.Until(next))
	}
	return nil
}

// receive decodes every packet of the server's stream as it comes (no
// loss or reordering on loopback).
func (c *Client) receive(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	pcm := make([]int16, codec.MaxFrameSamples)
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		c.packets.Add(1)
		c.bytes.Add(uint64(p.MarshalSize()))
		c.mu.Lock()
		c.seqs = append(c.seqs, p.SequenceNumber)
		c.ssrcs[p.SSRC]++
		c.pts[p.PayloadType]++
		payload := p.Payload
		if p.PayloadType == redPT {
			var blocks [4]red.Block
			if _, payload, _, err = red.Parse(payload, blocks[:0]); err != nil {
				c.mu.Unlock()
				continue
			}
		}
		if n, err := c.dec.Decode(payload, pcm); err == nil {
			c.heard = append(c.heard, pcm[:n]...)
		}
		c.mu.Unlock()
	}
}

// count reads what pion lets through of the server's stream and keeps
// nothing (Options.CountOnly): over UDP the socket counted every packet
// (skimConn) and these are the sample pion authenticated; over TCP these
// are all of them.
func (c *Client) count(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	buf := make([]byte, 1500)
	for {
		n, _, err := tr.Read(buf)
		if err != nil {
			return
		}
		c.verified.Add(1)
		if c.skim == nil {
			c.packets.Add(1)
			c.bytes.Add(uint64(n))
		}
	}
}

// Verified is, with Options.CountOnly, how many of the server's packets
// pion authenticated and decrypted: over UDP one in SkimEvery.
func (c *Client) Verified() int { return int(c.verified.Load()) }

// SkimEvery is how often a CountOnly client over UDP hands one of the
// server's media packets to pion, which authenticates and decrypts it.
const SkimEvery = 50

// skimConn is a CountOnly client's socket: it counts the server's SRTP
// media (RFC 7983's first byte, not RTCP by RFC 5761's payload type) and
// passes pion one packet in SkimEvery, and everything else.
type skimConn struct {
	*net.UDPConn
	c *Client
}

// ReadFromAddrPort reads the next datagram pion gets to see.
func (s *skimConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, from, err := s.UDPConn.ReadFromUDPAddrPort(b)
		if err != nil || n < 12 || b[0]>>6 != 2 || (b[1] >= 192 && b[1] <= 223) {
			return n, from, err
		}
		k := s.c.packets.Add(1)
		s.c.bytes.Add(uint64(n))
		if k%SkimEvery == 1 {
			return n, from, nil
		}
	}
}

// ReadFrom is ReadFromAddrPort for callers with a net.Addr.
func (s *skimConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := s.ReadFromAddrPort(b)
	if err != nil {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(from), nil
}

// WriteToAddrPort sends a datagram.
func (s *skimConn) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	return s.UDPConn.WriteToUDPAddrPort(b, to)
}

// Mark is how many samples the client has heard so far.
func (c *Client) Mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.heard)
}

// LevelSince is freq's level (bench/signal.ToneLevelDB) in what the client
// heard since mark.
func (c *Client) LevelSince(mark int, freq float64) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return signal.ToneLevelDB(c.heard[mark:], freq)
}

// Packets is how many RTP packets the client received.
func (c *Client) Packets() int { return int(c.packets.Load()) }

// Bytes is how many bytes of RTP the client received: as SRTP (the tag
// included) with Options.CountOnly over UDP, after SRTP otherwise.
func (c *Client) Bytes() uint64 { return c.bytes.Load() }

// Seqs is the sequence numbers received, in order of arrival.
func (c *Client) Seqs() []uint16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]uint16(nil), c.seqs...)
}

// SSRCs counts the packets received per SSRC.
func (c *Client) SSRCs() map[uint32]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.ssrcs)
}

// PayloadTypes counts the packets received per payload type.
func (c *Client) PayloadTypes() map[uint8]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.pts)
}

// RTCPPackets is how many RTCP packets arrived about the stream the client
// sends.
func (c *Client) RTCPPackets() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rtcp
}

// Close closes the connection.
func (c *Client) Close() error {
	err := c.PC.Close()
	if c.skim != nil {
		_ = c.skim.Close()
	}
	return err
}

// Switch is a net.PacketConn that can go silent: Off drops everything it
// would send or receive, as a client whose network vanished.
type Switch struct {
	net.PacketConn
	off atomic.Bool
}

// Off makes the socket silent.
func (s *Switch) Off() { s.off.Store(true) }

// ReadFrom drops what arrives while off.
func (s *Switch) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, a, err := s.PacketConn.ReadFrom(b)
		if err != nil || !s.off.Load() {
			return n, a, err
		}
	}
}

// WriteTo pretends to send while off.
func (s *Switch) WriteTo(b []byte, a net.Addr) (int, error) {
	if s.off.Load() {
		return len(b), nil
	}
	return s.PacketConn.WriteTo(b, a)
}
