package rtpudp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/handsup-audio/handsup/internal/prefetch"
	"github.com/handsup-audio/handsup/session"
	"github.com/handsup-audio/handsup/session/internal/mmsg"
)

// Errors callers branch on.
var (
	ErrAddrTaken = errors.New("rtpudp: another participant already uses this address")
	ErrClosed    = errors.New("rtpudp: transport closed")
	ErrSSRCTaken = errors.New("rtpudp: another participant already latches on this SSRC")
)

// Config holds a transport's settings. The zero value works: every zero
// field takes the default written beside it.
type Config struct {
	Addr      string // UDP address to listen on; default "127.0.0.1:5004"
	BatchSize int    // datagrams per sendmmsg; default 256
	// SocketBuffer is SO_SNDBUF and SO_RCVBUF in bytes; default 8 MiB: a
	// tick's burst to 10,000 listeners (about 1 KiB of kernel memory per
	// datagram on loopback). The kernel caps it at net.core.wmem_max and
	// rmem_max; Transport.SocketBuffers says what it granted.
	SocketBuffer int
	// NoRTCPPort turns off the second socket. By default (false) the
	// transport also listens on the RTP port + 1, where RFC 3550 clients
	// that do not multiplex (ffmpeg among them) send their RTCP. When Addr
	// has port 0, the kernel's port is taken only if port + 1 is free too.
	NoRTCPPort bool
	// MoveInterval bounds how often a latching peer (AddLatchingPeer) may
	// follow its SSRC to a new source address (NAT rebinding, a phone
	// moving from Wi-Fi to LTE): at most one move per interval; default
	// 1 s.
	MoveInterval time.Duration
	// Reserved are the server's other UDP sockets (a WebRTC transport's),
	// refused as participant addresses like the transport's own: a
	// participant there would feed the server its own output. A wildcard
	// address (0.0.0.0:port) stands for every local address on its port.
	// Default none.
	Reserved []netip.AddrPort
	// UnconfirmedPackets is how many packets (RTP and RTCP) a peer's
	// stream may send to a receive address on another host than its
	// source before a datagram arrives from that receive address (its
	// consent, as ICE asks of WebRTC): a join cannot turn the server into
	// a reflector toward a host that never asked. Default 5.
	UnconfirmedPackets int
	// ReadOnDrain leaves the RTP socket to Drain: Serve then reads only
	// the RTCP port, and whoever ticks the rooms calls Drain at the start
	// of each tick (engine.Config.BeforeTick). A packet then reaches its
	// jitter buffer, stamped, at the first tick that can play it, which
	// is what the buffer's target has to cover: through 60 ± 30 ms of
	// jitter a speaker's buffer concealed 3-11 times a minute this way
	// against 18-29 with packets stamped as they were read
	// (docs/weak-networks.md). Default false: Serve reads the socket as
	// datagrams arrive; a server that does not Drain at each tick must
	// keep it so.
	ReadOnDrain bool
	Now         func() time.Time // stamps address moves; default time.Now
	Logger      *slog.Logger     // logs address moves and refusals; default slog.Default()
}

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = "127.0.0.1:5004"
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 256
	}
	if c.SocketBuffer <= 0 {
		c.SocketBuffer = 8 << 20
	}
	if c.MoveInterval <= 0 {
		c.MoveInterval = time.Second
	}
	if c.UnconfirmedPackets <= 0 {
		c.UnconfirmedPackets = 5
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Transport is one UDP socket serving every participant.
type Transport struct {
	cfg      Config
	sock     *socket
	rtcpConn *net.UDPConn // the RTP port + 1; nil with Config.NoRTCPPort
	local    netip.AddrPort
	own      []netip.AddrPort // the sockets refused as participant addresses

	mu        sync.RWMutex
	peers     map[netip.AddrPort]*Peer
	dests     map[netip.AddrPort]*Peer // receive addresses other than the peer's source
	rtcpPeers map[netip.AddrPort]*Peer // sources accepted on the RTCP port
	latching  map[uint32]*Peer         // latching peers by their join SSRC
	closed    atomic.Bool
	done      chan struct{} // closed by Close

	stats counters
}

// Listen opens the socket.
func Listen(cfg Config) (*Transport, error) {
	cfg = cfg.withDefaults()
	ap, err := netip.ParseAddrPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("rtpudp: address %q: %w", cfg.Addr, err)
	}
	sock, rtcpConn, err := listenPair(ap, !cfg.NoRTCPPort, cfg.SocketBuffer)
	if err != nil {
		return nil, err
	}
	t := &Transport{
		cfg:       cfg,
		sock:      sock,
		rtcpConn:  rtcpConn,
		local:     sock.local,
		peers:     make(map[netip.AddrPort]*Peer),
		dests:     make(map[netip.AddrPort]*Peer),
		rtcpPeers: make(map[netip.AddrPort]*Peer),
		latching:  make(map[uint32]*Peer),
		done:      make(chan struct{}),
	}
	if cfg.ReadOnDrain {
		// Nobody waits for input: out of the epoll descriptor for good,
		// so no datagram sent walks to its entry (muteInput).
		t.sock.muteInput()
	}
	t.own = append([]netip.AddrPort{t.local}, cfg.Reserved...)
	if rtcpConn != nil {
		t.own = append(t.own, t.RTCPAddr())
	}
	return t, nil
}

// listenPair opens the RTP socket and, when rtcp is set, the socket on
// its port + 1. With port 0 it asks the kernel again (a few times) until
// both ports of a pair are free.
func listenPair(ap netip.AddrPort, rtcp bool, buf int) (conn *socket, rtcpConn *net.UDPConn, err error) {
	tries := 1
	if rtcp && ap.Port() == 0 {
		tries = 32
	}
	for range tries {
		conn, err = openSocket(ap, buf)
		if err != nil {
			return nil, nil, err
		}
		if !rtcp {
			return conn, nil, nil
		}
		port := int(conn.local.Port())
		if port < 65535 {
			rtcpConn, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr(), uint16(port+1))))
			if err == nil {
				return conn, rtcpConn, nil
			}
		} else {
			err = errors.New("no port above 65535")
		}
		conn.close()
	}
	return nil, nil, fmt.Errorf("rtpudp: RTCP port (the RTP port + 1) for %s: %w (Config.NoRTCPPort turns it off)", ap, err)
}

// LocalAddr is the address the socket listens on.
func (t *Transport) LocalAddr() netip.AddrPort { return t.local }

// RTCPAddr is the address of the RTCP socket, the RTP port + 1; the zero
// value with Config.NoRTCPPort.
func (t *Transport) RTCPAddr() netip.AddrPort {
	if t.rtcpConn == nil {
		return netip.AddrPort{}
	}
	return t.rtcpConn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close closes the sockets; Serve returns.
func (t *Transport) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	close(t.done)
	if t.rtcpConn != nil {
		_ = t.rtcpConn.Close()
	}
	t.sock.close()
	return nil
}

// NewBatch makes a send batch for one room: the room's sinks gather a
// tick's packets into it, and its engine.RoomConfig.Send (SendPart) and
// AfterTick (Flush) hooks send them once the room's lock is released.
func (t *Transport) NewBatch() *Batch {
	return &Batch{t: t}
}

// AddPeer declares that remote belongs to a participant: its datagrams go
// to the receiver bound with Peer.Bind (a session.Member, once the
// participant joined through session.Room.Join), and the participant's packets
// leave through batch towards sendTo, or towards remote when sendTo is the
// zero value (symmetric RTP; clients such as ffmpeg send and receive on
// different ports). An address serves one participant at a time, as its
// source or its receive address (ErrAddrTaken); the transport's own
// sockets and Config.Reserved are ErrOwnAddr, unspecified, multicast and
// broadcast addresses ErrBadAddr. Each refusal is counted and logged.
//
// A sendTo on another host than remote gets at most
// Config.UnconfirmedPackets packets until a datagram arrives from it (to
// either socket, from sendTo or the port above it, where RFC 3550
// clients send their RTCP): the host must show it wants the stream.
//
// On the RTCP socket (the RTP port + 1) the peer's RTCP is accepted from
// remote, from sendTo, and from the port above each (where RFC 3550
// clients such as ffmpeg send it from); an address another peer claimed
// first stays that peer's.
func (t *Transport) AddPeer(remote, sendTo netip.AddrPort, batch *Batch) (*Peer, error) {
	remote = unmap(remote)
	if !sendTo.IsValid() {
		sendTo = remote
	}
	sendTo = unmap(sendTo)
	for _, a := range []netip.AddrPort{remote, sendTo} {
		if why, err := t.checkAddr(a); err != nil {
			return nil, t.refuse(why, err)
		}
	}
	p := &Peer{t: t, remote: remote, sendTo: sendTo, batch: batch}
	p.confirmed.Store(sendTo.Addr() == remote.Addr())
	p.first.Set(sendTo)
	p.dst.Store(&p.first)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return nil, ErrClosed
	}
	for _, a := range []netip.AddrPort{remote, sendTo} {
		if t.inUseLocked(a) {
			return nil, t.refuse(refusedTaken, fmt.Errorf("%w: %s", ErrAddrTaken, a))
		}
	}
	t.peers[remote] = p
	if sendTo != remote {
		t.dests[sendTo] = p
	}
	if t.rtcpConn != nil {
		for _, a := range p.rtcpSources() {
			if _, taken := t.rtcpPeers[a]; !taken {
				t.rtcpPeers[a] = p
			}
		}
	}
	return p, nil
}

// AddLatchingPeer declares a participant whose address the transport
// learns (what Janus and Asterisk call comedia, or symmetric RTP): a client
// behind a NAT cannot know its public address, so it sends its first
// packets with ssrc as their SSRC (RTP, or the sender SSRC of an RTCP
// packet such as a receiver report), and the peer latches onto the first
// source address that presents it: its datagrams go to the bound receiver
// and its stream goes back there. Until then it sends nothing. When the
// source changes (the NAT rebinds, the client changes networks), the peer
// follows only a packet from the new source that presents the same SSRC,
// at most once per Config.MoveInterval; each move is counted and logged.
// Anyone who sees the client's packets sees the SSRC: this keeps off
// strangers and scans, not an on-path attacker. ssrc is chosen by the
// caller at random (crypto/rand); one already used is ErrSSRCTaken.
func (t *Transport) AddLatchingPeer(ssrc uint32, batch *Batch) (*Peer, error) {
	p := &Peer{t: t, batch: batch, latch: true, ssrc: ssrc}
	p.confirmed.Store(true) // it sends to where its packets come from
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return nil, ErrClosed
	}
	if _, taken := t.latching[ssrc]; taken {
		return nil, ErrSSRCTaken
	}
	t.latching[ssrc] = p
	return p, nil
}

// inUseLocked reports whether a is a participant's source or receive
// address.
func (t *Transport) inUseLocked(a netip.AddrPort) bool {
	return t.peers[a] != nil || t.dests[a] != nil
}

// rtcpSources are the addresses the RTCP socket accepts the peer's RTCP
// from: its declared addresses and the port above each.
func (p *Peer) rtcpSources() []netip.AddrPort {
	out := make([]netip.AddrPort, 0, 4)
	if p.latch {
		return out // learned addresses send RTCP muxed
	}
	for _, a := range []netip.AddrPort{p.remote, unmap(p.sendTo)} {
		out = append(out, a)
		if a.Port() < 65535 {
			out = append(out, netip.AddrPortFrom(a.Addr(), a.Port()+1))
		}
	}
	return out
}

func unmap(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }

// RemovePeer forgets a peer's addresses.
func (t *Transport) RemovePeer(p *Peer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p.remote.IsValid() && t.peers[p.remote] == p {
		delete(t.peers, p.remote)
	}
	if t.dests[p.sendTo] == p {
		delete(t.dests, p.sendTo)
	}
	if p.latch && t.latching[p.ssrc] == p {
		delete(t.latching, p.ssrc)
	}
	for _, a := range p.rtcpSources() {
		if t.rtcpPeers[a] == p {
			delete(t.rtcpPeers, a)
		}
	}
}

// Peers is how many addresses are declared.
func (t *Transport) Peers() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.peers)
}

func (t *Transport) peer(addr netip.AddrPort, rtcpPort bool) *Peer {
	addr = unmap(addr)
	t.mu.RLock()
	var p *Peer
	if rtcpPort {
		p = t.rtcpPeers[addr]
	} else if p = t.peers[addr]; p == nil {
		p = t.dests[addr] // a receive socket's RTCP, or its consent
	}
	t.mu.RUnlock()
	if p != nil && !p.confirmed.Load() {
		t.confirm(p, addr)
	}
	return p
}

// confirm takes a datagram from p's receive address (or the port above
// it) as the consent of its host to get p's stream.
func (t *Transport) confirm(p *Peer, from netip.AddrPort) {
	to := p.SendTo()
	if from.Addr() != to.Addr() || (from.Port() != to.Port() && from.Port() != to.Port()+1) {
		return
	}
	if !p.confirmed.Swap(true) {
		t.stats.confirmed.Add(1)
		t.cfg.Logger.Debug("participant receive address confirmed", "addr", to.String())
	}
}

// Serve reads datagrams until ctx ends or the transport closes (with
// Config.ReadOnDrain, those of the RTCP port only: Drain reads the RTP
// socket). Each goes
// to the receiver bound to its source address, RTP and RTCP told apart as
// in RFC 5761; datagrams from undeclared addresses, or from a declared one
// with no receiver bound yet, are dropped and counted. The RTCP socket, if
// any, is read on a second goroutine, its datagrams routed the same way.
func (t *Transport) Serve(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { _ = t.Close() })
	defer stop()
	var rtcpDone chan struct{}
	if t.rtcpConn != nil {
		rtcpDone = make(chan struct{})
		go func() {
			defer close(rtcpDone)
			t.read(t.rtcpConn, true)
		}()
	}
	if t.cfg.ReadOnDrain {
		<-t.done
	} else {
		t.sock.read(t.receiveRTPPort, &t.stats.readErrors)
	}
	if rtcpDone != nil {
		_ = t.Close()
		<-rtcpDone
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// read reads the RTCP socket until the transport closes.
func (t *Transport) read(conn *net.UDPConn, rtcpPort bool) {
	buf := make([]byte, 2048)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if t.closed.Load() {
				return
			}
			t.stats.readErrors.Add(1)
			continue
		}
		t.receive(buf[:n], from, rtcpPort)
	}
}

// Drain hands over at once, without waiting, what has arrived on the RTP
// socket. With Config.ReadOnDrain it is the socket's only reader, called
// at the start of each tick (engine.Config.BeforeTick). Without it Serve's
// reader does the same as datagrams arrive, but a busy machine can keep it
// waiting for a thread: at 100 rooms on two cores, 1.2% of the speakers'
// packets were read over 10 ms after the kernel received them, 0.7% over
// 20 ms (SO_TIMESTAMPNS against the time of reading), some after the tick
// that was to play them; Drain at each tick's start puts what arrived
// before the tick in the jitter buffers for it. Drain is safe from any
// goroutine, before Serve and after Close.
func (t *Transport) Drain() { t.sock.drain(t.receiveRTPPort, &t.stats.readErrors) }

// receiveRTPPort routes a datagram that arrived on the RTP socket.
func (t *Transport) receiveRTPPort(pkt []byte, from netip.AddrPort) { t.receive(pkt, from, false) }

// receive routes one datagram that arrived on the RTP socket or, when
// rtcpPort is set, on the RTCP socket, which takes only RTCP.
func (t *Transport) receive(pkt []byte, from netip.AddrPort, rtcpPort bool) {
	if len(pkt) > maxDatagram {
		t.stats.oversized.Add(1)
		return
	}
	rtcp := IsRTCP(pkt)
	p := t.peer(from, rtcpPort)
	if p == nil && !rtcpPort {
		p = t.learn(pkt, rtcp, from)
		if p == nil {
			return // counted by learn
		}
	}
	if p == nil {
		t.stats.unknownSource.Add(1)
		return
	}
	switch {
	case rtcpPort && !rtcp:
		t.stats.notRTCP.Add(1)
		return
	case rtcpPort:
		t.stats.rtcpIn.Add(1)
		t.stats.rtcpPortIn.Add(1)
	case rtcp:
		t.stats.rtcpIn.Add(1)
	default:
		t.stats.rtpIn.Add(1)
	}
	b := p.recv.Load()
	if b == nil {
		t.stats.unbound.Add(1)
		return
	}
	// The receiver counts its own drops.
	if rtcp {
		b.r.ReceiveRTCP(pkt)
	} else {
		b.r.ReceiveRTP(pkt)
	}
}

// learn finds the latching peer whose SSRC pkt presents and latches it
// onto from, or moves it there; nil (and the drop counted) when pkt
// presents no such SSRC or the peer moved too recently.
func (t *Transport) learn(pkt []byte, rtcp bool, from netip.AddrPort) *Peer {
	ssrc, ok := senderSSRC(pkt, rtcp)
	if !ok {
		t.stats.unknownSource.Add(1)
		return nil
	}
	t.mu.RLock()
	p := t.latching[ssrc]
	t.mu.RUnlock()
	if p == nil {
		t.stats.unknownSource.Add(1)
		return nil
	}
	from = unmap(from)
	now := t.cfg.Now()
	t.mu.Lock()
	if t.latching[ssrc] != p || t.inUseLocked(from) { // gone, or raced to another peer
		t.mu.Unlock()
		t.stats.unknownSource.Add(1)
		return nil
	}
	if why, err := t.checkAddr(from); err != nil { // a datagram spoofed from the server's own socket
		t.mu.Unlock()
		_ = t.refuse(why, err)
		return nil
	}
	old := p.remote
	if old.IsValid() && now.Sub(p.moved) < t.cfg.MoveInterval {
		t.mu.Unlock()
		t.stats.moveLimited.Add(1)
		return nil
	}
	if old.IsValid() {
		delete(t.peers, old)
	}
	t.peers[from] = p
	p.remote, p.sendTo, p.moved = from, from, now
	if old.IsValid() {
		p.dst.Store(mmsg.NewAddr(from)) // a send may be reading first
	} else {
		p.first.Set(from) // nothing has read it: dst was nil
		p.dst.Store(&p.first)
	}
	t.mu.Unlock()
	if old.IsValid() {
		t.stats.addressChanges.Add(1)
		t.cfg.Logger.Info("participant address changed", "from", old.String(), "to", from.String())
	} else {
		t.stats.latched.Add(1)
		t.cfg.Logger.Debug("participant address learned", "addr", from.String())
	}
	return p
}

// senderSSRC reads the SSRC a datagram presents: an RTP packet's, or the
// sender SSRC of the first packet of an RTCP compound.
func senderSSRC(pkt []byte, rtcp bool) (uint32, bool) {
	switch {
	case len(pkt) < 8 || pkt[0]>>6 != 2:
		return 0, false
	case rtcp:
		return binary.BigEndian.Uint32(pkt[4:8]), true
	case len(pkt) < 12:
		return 0, false
	default:
		return binary.BigEndian.Uint32(pkt[8:12]), true
	}
}

// maxDatagram is the largest datagram handsup accepts: an Ethernet MTU's
// worth. Opus at any sane bitrate fits many times over.
const maxDatagram = 1500

// IsRTCP tells RTCP from RTP on a shared port (RFC 5761 §4): RTCP packet
// types 192–223 sit where RTP would have the marker bit and payload types
// 64–95, which RTP profiles leave unused.
func IsRTCP(pkt []byte) bool {
	return len(pkt) >= 2 && pkt[0]>>6 == 2 && pkt[1] >= 192 && pkt[1] <= 223
}

// WriteTo sends one datagram at once, outside any batch (RTCP reports).
func (t *Transport) WriteTo(pkt []byte, to netip.AddrPort) error {
	if !to.IsValid() {
		return errNotLatched
	}
	var a mmsg.Addr
	a.Set(to)
	return t.writeTo(pkt, &a)
}

// writeTo sends one datagram at once to a prepared destination.
func (t *Transport) writeTo(pkt []byte, to *mmsg.Addr) error {
	err := t.sock.sendTo(pkt, to)
	if err != nil {
		t.stats.sendErrors.Add(1)
	}
	return err
}

// Peer is one declared address and the participant behind it. It is the
// participant's session.Link: its engine.Sink, its RTCP path, and the
// source of its incoming packets.
type Peer struct {
	// Read by every send, with first's sockaddrs: kept together
	// (peerHotBytes).
	t     *Transport
	batch *Batch
	dst   atomic.Pointer[mmsg.Addr] // sendTo, prepared for sendmmsg; nil until latched
	// confirmed: its receive address is its source's host, or has sent a
	// datagram; until then at most Config.UnconfirmedPackets are sent.
	confirmed   atomic.Bool
	unconfirmed atomic.Int64 // packets sent while not confirmed
	// first is the first address dst points to, prepared in the peer
	// itself rather than in an object of its own (a large room's tick
	// then loads one object per listener, not two). It is written once,
	// before dst publishes it; a move prepares a new Addr.
	first mmsg.Addr

	recv  atomic.Pointer[bound]
	latch bool   // learns its address (AddLatchingPeer)
	ssrc  uint32 // the SSRC it latches on

	// Guarded by t.mu; a latching peer's change when it moves.
	remote netip.AddrPort // where its datagrams come from
	sendTo netip.AddrPort // where its stream goes
	moved  time.Time      // when it last latched or moved
}

// errNotLatched: a latching peer has no address to send to yet.
var errNotLatched = errors.New("rtpudp: participant address not learned yet")

// bound boxes a receiver for the atomic pointer.
type bound struct{ r session.Receiver }

// Bind sets the receiver of the datagrams that arrive from the peer's
// address; nil unbinds. session.Room.Join binds its member.
func (p *Peer) Bind(r session.Receiver) {
	if r == nil {
		p.recv.Store(nil)
		return
	}
	p.recv.Store(&bound{r})
}

// WriteRTCP sends one RTCP packet to the peer at once, outside the batch.
func (p *Peer) WriteRTCP(pkt []byte) error {
	a := p.dst.Load() // SendTo, prepared
	if a == nil {
		return errNotLatched
	}
	if !p.consent() {
		return nil
	}
	return p.t.writeTo(pkt, a)
}

// consent reports whether a packet may go to the peer's receive address:
// confirmed, or within the packets allowed before; a refusal is counted.
func (p *Peer) consent() bool {
	if p.confirmed.Load() || p.unconfirmed.Add(1) <= int64(p.t.cfg.UnconfirmedPackets) {
		return true
	}
	p.t.stats.unconfirmedDrops.Add(1)
	return false
}

// Flush sends what the peer's batch holds now, without waiting for the
// room's tick to end (a retransmission is late already).
func (p *Peer) Flush() { p.batch.Flush() }

// Close unbinds the peer and frees its address for another participant.
func (p *Peer) Close() error {
	p.Bind(nil)
	p.t.RemovePeer(p)
	return nil
}

// Remote is the address its datagrams come from: the declared one, or
// the one a latching peer learned (the zero value until then).
func (p *Peer) Remote() netip.AddrPort {
	p.t.mu.RLock()
	defer p.t.mu.RUnlock()
	return p.remote
}

// SendTo is the address its stream goes to; the zero value while a
// latching peer has not learned its address.
func (p *Peer) SendTo() netip.AddrPort {
	p.t.mu.RLock()
	defer p.t.mu.RUnlock()
	return p.sendTo
}

// Latching reports whether the peer learns its address (AddLatchingPeer).
func (p *Peer) Latching() bool { return p.latch }

// WriteRTP queues one packet in the peer's batch; it never blocks on the
// network. It satisfies engine.Sink.
func (p *Peer) WriteRTP(header, payload []byte) error {
	a := p.dst.Load()
	if a == nil {
		p.t.stats.unlatched.Add(1)
		return nil // nowhere to send yet: as lost on the way
	}
	if !p.consent() {
		return nil // as lost on the way, until the receiver answers
	}
	return p.batch.add(a, header, payload)
}

// Prefetch starts loading what WriteRTP will read (engine.Prefetcher):
// with ahead 2 the peer itself, with its first prepared destination; with
// 1, later, the destination it points to, if it has moved since. A tick
// reaches each peer about 20 ms after the last, long gone from the
// caches: without it, loading the destination was a tenth of a large
// room's Go time (a cache miss per listener, in series behind the peer's
// own).
func (p *Peer) Prefetch(ahead int) {
	if ahead >= 2 {
		prefetch.Bytes(unsafe.Pointer(p), peerHotBytes)
		return
	}
	if a := p.dst.Load(); a != nil && a != &p.first { // first came with the peer
		prefetch.Bytes(unsafe.Pointer(a), uintptr(mmsg.SendBytes))
	}
}

// peerHotBytes are the bytes of a Peer that a send reads: up to first's
// sockaddrs.
const peerHotBytes = unsafe.Offsetof(Peer{}.first) + uintptr(mmsg.SendBytes)

// muteFrom is how many datagrams a part of SendPart sends from which it
// mutes the reader's epoll entry: the two epoll_ctl calls (3.4-3.9 µs
// here, BenchmarkMute) cost what about 85 wait-queue walks do (43 ns each
// at 3,200 listeners).
const muteFrom = 128

// maxHeader bounds a queued RTP header: 12 bytes plus CSRCs and an extension.
const maxHeader = 64

// maxChunks bounds what a batch holds unsent, 32,768 datagrams with the
// default BatchSize: beyond it (a room of more, or one whose batch nobody
// flushes), Add sends the oldest chunk at once, inside the room's lock.
const maxChunks = 128

// Batch gathers one room's outgoing packets for a tick and sends them with
// as few sendmmsg calls as fit. Headers are copied into the batch; payloads
// are referenced, as the engine keeps them until the room's next tick.
// Packets are queued in chunks of Config.BatchSize, one sendmmsg each, as
// many as the tick needs: nothing is sent while the room's lock is held,
// and the chunks are shared out between the parts of SendPart, which
// several workers run at once.
type Batch struct {
	t    *Transport
	mu   sync.Mutex
	fill []*chunk // being filled: the last takes the next packet
	free []*chunk

	round     []*chunk // the tick's chunks, shared by SendPart's parts
	roundLeft int      // parts of the round not finished
}

// chunk is one sendmmsg's worth of packets and their headers.
type chunk struct {
	q       *mmsg.Queue
	headers []byte
}

var errHeaderTooLong = errors.New("rtpudp: RTP header longer than 64 bytes")

func (b *Batch) add(to *mmsg.Addr, header, payload []byte) error {
	if len(header) > maxHeader {
		return errHeaderTooLong
	}
	b.mu.Lock()
	c := b.lastLocked()
	i := c.q.Len()
	h := c.headers[i*maxHeader : i*maxHeader+len(header)]
	copy(h, header)
	c.q.Add(to, h, payload)
	if len(b.fill) > maxChunks { // nobody flushes: send the oldest now
		old := b.fill[0]
		b.fill = append(b.fill[:0], b.fill[1:]...)
		b.mu.Unlock()
		b.send(old)
		b.recycle(old)
		return nil
	}
	b.mu.Unlock()
	return nil
}

// lastLocked is the chunk that takes the next packet.
func (b *Batch) lastLocked() *chunk {
	if n := len(b.fill); n > 0 && !b.fill[n-1].q.Full() {
		return b.fill[n-1]
	}
	var c *chunk
	if n := len(b.free); n > 0 {
		c, b.free = b.free[n-1], b.free[:n-1]
	} else {
		size := b.t.cfg.BatchSize
		c = &chunk{q: mmsg.NewFDQueue(b.t.sock.fd, b.t.sock.family, size, 2), headers: make([]byte, size*maxHeader)}
	}
	b.fill = append(b.fill, c)
	return c
}

// send sends a chunk, unless the transport is closed (then its packets
// count as send errors).
func (b *Batch) send(c *chunk) {
	if !b.t.sock.use(func(int, int) { c.q.Flush(&b.t.stats) }) && c.q.Len() > 0 {
		b.t.stats.sendErrors.Add(uint64(c.q.Len()))
		c.q.Flush(nil) // fails at once on the closed socket: empties it
	}
}

func (b *Batch) recycle(cs ...*chunk) {
	b.mu.Lock()
	b.free = append(b.free, cs...)
	b.mu.Unlock()
}

// SendPart sends part part of parts of what the batch holds: the first
// part of a round takes the chunks queued so far, and each part sends
// every parts-th of them. A room's engine.RoomConfig.Send calls it, the
// parts on several workers at once, once the tick is built and the
// room's lock released.
func (b *Batch) SendPart(part, parts int) {
	b.mu.Lock()
	if b.roundLeft == 0 {
		b.round = append(b.round[:0], b.fill...)
		b.fill = b.fill[:0]
		b.roundLeft = parts
	}
	round := b.round
	b.mu.Unlock()
	// A large room's datagrams leave without waking the reader's epoll
	// entry (muteInput); for a few, the two system calls cost more.
	n := 0
	for i := part; i < len(round); i += parts {
		n += round[i].q.Len()
	}
	mute := n >= muteFrom
	if mute {
		b.t.sock.muteInput()
	}
	for i := part; i < len(round); i += parts {
		b.send(round[i])
	}
	if mute {
		b.t.sock.unmuteInput()
	}
	b.mu.Lock()
	if b.roundLeft--; b.roundLeft == 0 {
		b.free = append(b.free, round...)
		clear(b.round)
		b.round = b.round[:0]
	}
	b.mu.Unlock()
}

// Flush sends what the batch holds. Rooms call it from their AfterTick;
// a peer's Flush calls it after a retransmission.
func (b *Batch) Flush() {
	b.mu.Lock()
	if len(b.fill) == 0 {
		b.mu.Unlock()
		return
	}
	var stack [8]*chunk
	taken := append(stack[:0], b.fill...)
	b.fill = b.fill[:0]
	b.mu.Unlock()
	for _, c := range taken {
		b.send(c)
	}
	b.recycle(taken...)
}

type counters struct {
	rtpIn, rtcpIn, unknownSource, unbound, oversized, readErrors atomic.Uint64
	rtcpPortIn, notRTCP                                          atomic.Uint64
	latched, addressChanges, moveLimited, unlatched              atomic.Uint64
	packetsOut, syscalls, sendErrors                             atomic.Uint64
	confirmed, unconfirmedDrops                                  atomic.Uint64
	refused                                                      [numRefusals]atomic.Uint64
}

// Flushed counts what a batch's sendmmsg calls did.
func (c *counters) Flushed(sent, syscalls, failed int) {
	c.packetsOut.Add(uint64(sent))
	c.syscalls.Add(uint64(syscalls))
	c.sendErrors.Add(uint64(failed))
}

// Stats counts the transport's traffic.
type Stats struct {
	RTPIn, RTCPIn  uint64 // datagrams from declared addresses
	RTCPPortIn     uint64 // of RTCPIn, those that came to the RTP port + 1
	UnknownSource  uint64 // dropped: from an address no participant declared
	NotRTCP        uint64 // dropped: not RTCP, on the RTCP port
	Latched        uint64 // latching peers that learned their first address
	AddressChanges uint64 // latching peers that followed their SSRC to a new address
	MoveLimited    uint64 // dropped: a latching peer's SSRC from a new address within MoveInterval of its last move
	Unlatched      uint64 // packets not sent: the latching peer had no address yet
	// Unconfirmed counts packets not sent: the receive address, on
	// another host than the source, had not sent a datagram yet and its
	// Config.UnconfirmedPackets were spent. Confirmed counts receive
	// addresses that did.
	Unconfirmed, Confirmed uint64
	Refused                Refusals // addresses AddPeer (or latching) refused, by reason
	Unbound                uint64   // dropped (RTP or RTCP): declared address, no receiver bound yet
	Oversized              uint64   // dropped: longer than 1500 bytes
	ReadErrors             uint64
	PacketsOut             uint64 // datagrams sent
	SendSyscalls           uint64 // sendmmsg calls
	SendErrors             uint64
	DeclaredPeers          int
}

// Stats returns the transport's counters.
func (t *Transport) Stats() Stats {
	s := &t.stats
	out := Stats{
		RTPIn: s.rtpIn.Load(), RTCPIn: s.rtcpIn.Load(), RTCPPortIn: s.rtcpPortIn.Load(),
		NotRTCP: s.notRTCP.Load(), Latched: s.latched.Load(),
		AddressChanges: s.addressChanges.Load(), MoveLimited: s.moveLimited.Load(),
		Unlatched:     s.unlatched.Load(),
		UnknownSource: s.unknownSource.Load(), Unbound: s.unbound.Load(),
		Oversized: s.oversized.Load(), ReadErrors: s.readErrors.Load(),
		PacketsOut: s.packetsOut.Load(), SendSyscalls: s.syscalls.Load(),
		SendErrors: s.sendErrors.Load(), DeclaredPeers: t.Peers(),
		Unconfirmed: s.unconfirmedDrops.Load(), Confirmed: s.confirmed.Load(),
		Refused: Refusals{
			Unspecified: s.refused[refusedUnspecified].Load(), Multicast: s.refused[refusedMulticast].Load(),
			Broadcast: s.refused[refusedBroadcast].Load(), Own: s.refused[refusedOwn].Load(),
			Taken: s.refused[refusedTaken].Load(),
		},
	}
	return out
}

// Refusals counts refused participant addresses by reason.
type Refusals struct {
	Unspecified uint64 // 0.0.0.0, ::, or port 0 (ErrBadAddr)
	Multicast   uint64 // ErrBadAddr
	Broadcast   uint64 // 255.255.255.255 or a local network's (ErrBadAddr)
	Own         uint64 // the server's own socket (ErrOwnAddr)
	Taken       uint64 // another participant's source or receive address (ErrAddrTaken)
}

// SocketBuffers is what the kernel granted the RTP socket's send and
// receive buffers (Config.SocketBuffer asks; Linux doubles the ask for its
// bookkeeping and caps it at net.core.wmem_max and rmem_max unless the
// process may force it). Zero where the system does not say.
func (t *Transport) SocketBuffers() (send, recv int) {
	return t.sock.buffers()
}
