package webrtc

import (
	"net/netip"

	"github.com/pion/interceptor"
	"github.com/pion/srtp/v3"
	pion "github.com/pion/webrtc/v4"
)

// A listener's packet on pion's own write path crosses its interceptor
// chain, the SRTP session's stream map, the DTLS mux, the ICE agent and
// the UDP mux, each with its own locks and state: about 7 µs per listener
// per tick once a room has hundreds of them and none of that state is in
// cache. The fast path keeps what a send needs in the Peer: its own SRTP
// context, keyed from its DTLS handshake (keyCapture), and the address of
// the ICE pair in use. WriteRTP protects the engine's packet with it and
// queues it in the transport's sendmmsg batch. ICE (consent checks,
// restarts), DTLS and RTCP stay with pion. A peer over ICE-TCP, or one
// whose keys were not captured (the client insisted on being the DTLS
// server), keeps pion's path; Stats.SlowPeers counts those.

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

// fastPath is a peer's outbound SRTP context; Peer.mu guards its use.
type fastPath struct{ ctx *srtp.Context }

// FastPath reports whether the peer's stream takes the fast path now: its
// DTLS keys were captured and its ICE pair runs over UDP.
func (p *Peer) FastPath() bool { return p.fast.Load() != nil && p.route.Load() != nil }

// startFastPath derives the peer's SRTP context once DTLS is up.
func (p *Peer) startFastPath() {
	if p.fast.Load() != nil {
		return
	}
	ctx, err := p.keys.context()
	if err != nil {
		p.t.stats.slowPeers.Add(1)
		return
	}
	p.fast.Store(&fastPath{ctx: ctx})
	if p.route.Load() == nil {
		if pair, err := p.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair(); err == nil {
			p.onPair(pair)
		}
	}
}

// onPair follows the ICE pair in use: its remote address when it runs over
// UDP (through the transport's mux), nothing over TCP.
func (p *Peer) onPair(pair *pion.ICECandidatePair) {
	if pair == nil || pair.Local == nil || pair.Remote == nil || pair.Local.Protocol != pion.ICEProtocolUDP {
		p.route.Store(nil)
		return
	}
	ip, err := netip.ParseAddr(pair.Remote.Address)
	if err != nil { // an mDNS name: pion's path resolves it
		p.route.Store(nil)
		return
	}
	to := netip.AddrPortFrom(ip.Unmap(), pair.Remote.Port)
	p.route.Store(&to)
}

// writeFast protects one packet with the peer's SRTP context and queues it
// for the pair's remote address. The plaintext and its protection share
// the peer's buffer, grown to the largest packet seen.
func (p *Peer) writeFast(f *fastPath, to netip.AddrPort, header, payload []byte) error {
	n := len(header) + len(payload)
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.hdr.Unmarshal(header); err != nil {
		p.t.stats.badHeader.Add(1)
		return err
	}
	if need := 2*n + srtpOverhead; cap(p.buf) < need {
		p.buf = make([]byte, 0, need)
	}
	plain := append(append(p.buf[:0], header...), payload...)
	out, err := f.ctx.EncryptRTP(plain[n:n], plain, &p.hdr)
	if err != nil {
		p.t.stats.sendErrors.Add(1)
		return err
	}
	if _, err := p.t.udp.WriteToAddrPort(out, to); err != nil {
		p.t.stats.sendErrors.Add(1)
		return err
	}
	p.t.stats.rtpSent.Add(1)
	p.t.stats.fastRTP.Add(1)
	return nil
}

// srtpOverhead bounds what SRTP adds to a packet: an authentication tag
// of up to 16 bytes (AEAD) and room for an MKI.
const srtpOverhead = 32
