package webrtc

import (
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	pion "github.com/pion/webrtc/v4"

	"github.com/handsup-audio/handsup/internal/prefetch"
)

// A listener's packet on pion's own write path crosses its interceptor
// chain, the SRTP session's stream map, the DTLS mux, the ICE agent and
// the UDP mux, each with its own locks and state: about 7 µs per listener
// per tick once a room has hundreds of them and none of that state is in
// cache. The fast path keeps what a send needs at the head of the Peer
// (sendState): its own SRTP protection, keyed from its DTLS handshake
// (keyCapture; gcmStream for AES-GCM), and the address of the ICE pair in
// use. WriteRTP protects the engine's packet straight into the room it
// reserves in the transport's sendmmsg batch, and the engine's Prefetch
// hints bring the next peers' state into the caches meanwhile. ICE
// (consent checks, restarts), DTLS and RTCP stay with pion. A peer over
// ICE-TCP, or one whose keys were not captured (the client insisted on
// being the DTLS server), keeps pion's path; Stats.SlowPeers counts those.

// newAPI is a pion API for one peer: the transport's settings, with the
// peer's key capture as the DTLS key log and ServerHello hook. No
// interceptors: the session layer reads the peers' RTCP raw and answers
// NACKs from the room's shared history.
func (t *Transport) newAPI(p *Peer) *pion.API {
	se := t.se
	se.SetDTLSKeyLogWriter(&p.keys)
	se.SetDTLSServerHelloMessageHook(p.keys.serverHello)
	return pion.NewAPI(pion.WithSettingEngine(se), pion.WithMediaEngine(t.me),
		pion.WithInterceptorRegistry(&interceptor.Registry{}))
}

// fastPath is a peer's outbound SRTP protection: gcm under the AES-GCM
// profiles browsers negotiate, pion's ctx under the others.
type fastPath struct {
	gcm gcmStream // used when gcm.aead is set
	ctx *srtp.Context
}

// sendState is what a tick's packet to a peer reads: it sits at the head
// of Peer with the gcmStream inline, the AES key schedule one pointer
// away, so that a send to a peer whose state has left the caches waits on
// few memory loads, most of them at once.
type sendState struct {
	mu    sync.Mutex
	t     *Transport     // Peer.t, here so that a send reads one line less
	route netip.AddrPort // the ICE pair's remote over UDP; invalid over TCP or before a pair
	fast  fastPath       // zero until DTLS is up and the keys derived
	// keys is the address of the AES-GCM state (key schedule, GHASH
	// table) fast.gcm uses, for Prefetch; 0 before.
	keys atomic.Uintptr
}

// gcmStateLines is how many cache lines of AES-GCM state a protection
// reads from: Go's AES-GCM keeps its expanded key and its GHASH table in
// one object of about 760 bytes on amd64.
const gcmStateLines = 12

// Prefetch starts loading what a send to the peer reads (engine.Prefetcher):
// with ahead 2 its send state, with 1, later, the AES-GCM state that
// points to. A tick reaches each peer's state about 20 ms after the last,
// long gone from the caches; this way its loads overlap the sends to the
// listeners before it.
func (p *Peer) Prefetch(ahead int) {
	if ahead >= 2 {
		prefetch.Bytes(unsafe.Pointer(&p.send), unsafe.Sizeof(p.send))
		return
	}
	if k := p.send.keys.Load(); k != 0 {
		prefetch.At(k, gcmStateLines)
	}
}

// FastPath reports whether the peer's stream takes the fast path now: its
// DTLS keys were captured and its ICE pair runs over UDP.
func (p *Peer) FastPath() bool {
	p.send.mu.Lock()
	defer p.send.mu.Unlock()
	return p.send.ready()
}

func (s *sendState) ready() bool {
	return (s.fast.gcm.aead != nil || s.fast.ctx != nil) && s.route.IsValid()
}

// startFastPath derives the peer's SRTP protection once DTLS is up.
func (p *Peer) startFastPath() {
	p.send.mu.Lock()
	started := p.send.fast.gcm.aead != nil || p.send.fast.ctx != nil
	p.send.mu.Unlock()
	if started {
		return
	}
	f, err := p.keys.sender()
	if err != nil {
		p.t.stats.slowPeers.Add(1)
		return
	}
	p.send.mu.Lock()
	p.send.fast = *f
	if f.gcm.aead != nil {
		p.send.keys.Store(reflect.ValueOf(f.gcm.aead).Pointer())
	}
	routed := p.send.route.IsValid()
	p.send.mu.Unlock()
	if !routed {
		if pair, err := p.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair(); err == nil {
			p.onPair(pair)
		}
	}
}

// onPair follows the ICE pair in use: its remote address when it runs over
// UDP (through the transport's mux), nothing over TCP.
func (p *Peer) onPair(pair *pion.ICECandidatePair) {
	if p.closed.Load() {
		return
	}
	var to netip.AddrPort
	if pair != nil && pair.Local != nil && pair.Remote != nil && pair.Local.Protocol == pion.ICEProtocolUDP {
		if ip, err := netip.ParseAddr(pair.Remote.Address); err == nil { // not an mDNS name
			to = netip.AddrPortFrom(ip.Unmap(), pair.Remote.Port)
		}
	}
	p.send.mu.Lock()
	p.send.route = to
	p.send.mu.Unlock()
}

// protectBufs hold packets between their protection and their copy into
// the send batch, for the AES-CM profiles (whose tag length pion's context
// decides): a buffer recently used on this P is in its cache.
var protectBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 2*1500)
	return &b
}}

// writeFast protects one packet with the peer's SRTP protection and queues
// it for the pair's remote address; ok is false when the fast path is not
// ready (pion's path takes the packet). An AES-GCM packet is protected
// straight into the room it reserved in the send batch.
func (p *Peer) writeFast(header, payload []byte) (ok bool, err error) {
	s := &p.send
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ready() {
		return false, nil
	}
	if s.fast.gcm.aead != nil {
		if len(header) < 12 {
			s.t.stats.badHeader.Add(1)
			return true, errShortHeader
		}
		b, buf := s.t.udp.reserve(len(header)+len(payload)+gcmTagLen, s.route)
		_, _ = s.fast.gcm.protect(buf[:0], header, payload) // fills buf exactly; a 12-byte header cannot fail
		b.done()
		s.t.stats.fastRTP.Add(1)
		return true, nil
	}
	n := len(header) + len(payload)
	bp := protectBufs.Get().(*[]byte)
	defer protectBufs.Put(bp)
	if need := 2*n + srtpOverhead; cap(*bp) < need {
		*bp = make([]byte, 0, need)
	}
	var h rtp.Header
	if _, err := h.Unmarshal(header); err != nil {
		p.t.stats.badHeader.Add(1)
		return true, err
	}
	plain := append(append((*bp)[:0], header...), payload...)
	out, err := s.fast.ctx.EncryptRTP(plain[n:n], plain, &h)
	if err != nil {
		p.t.stats.sendErrors.Add(1)
		return true, err
	}
	if _, err := p.t.udp.WriteToAddrPort(out, s.route); err != nil {
		p.t.stats.sendErrors.Add(1)
		return true, err
	}
	p.t.stats.fastRTP.Add(1)
	return true, nil
}

// srtpOverhead bounds what SRTP adds to a packet: an authentication tag
// of up to 16 bytes (AEAD) and room for an MKI.
const srtpOverhead = 32
