// Package webrtc carries handsup's participants over WebRTC (pion/webrtc):
// browsers and mobile apps behind NAT, with ICE, DTLS-SRTP and the
// receiver reports and NACKs of a real jitter buffer.
//
// One Transport serves every peer: ICE runs on one UDP port (a UDP mux),
// optionally with passive ICE-TCP on one TCP port for networks that block
// UDP, and NAT 1:1 addresses for a server behind a load balancer. Answer
// takes a client's SDP offer (WHIP or WHEP) and returns a Peer and the
// answer, complete with candidates (no trickle).
//
// A Peer is a participant's session.Link. Its WriteRTP is the engine's
// sink, and a listener costs an SRTP protection of the room's shared
// payload and a place in a send batch — no encode, no goroutine, no
// allocation. Once the peer's DTLS handshake is done (the transport is the
// DTLS server, on ECDHE-ECDSA-AES128-GCM-SHA256), its SRTP keys are
// derived as DTLS-SRTP does (RFC 5764) from what the handshake showed this
// process, and WriteRTP protects the packet itself (AES-128-GCM, RFC 7714;
// pion's srtp.Context for AES-CM) straight into the transport's batch,
// addressed to the ICE pair in use, past pion's write path, whose layers
// cost several microseconds per listener once a room has hundreds (see
// fastpath.go). Transport.Flush sends the batch with sendmmsg(2): rooms
// call it after each tick (session.Config.Flushers). ICE, DTLS and RTCP
// stay with pion; a peer over ICE-TCP keeps pion's path. RTP and RTCP from
// the participant reach the bound session.Member raw: the transport
// registers none of pion's interceptors, so the session answers NACKs from
// the room's history and reads the browser's receiver reports itself.
//
// Answers carry Opus (PT 111, fmtp minptime=10;useinbandfec=1) and, when
// offered, audio/red (PT 63); Peer.Configure puts what was negotiated in
// the participant's engine.ParticipantConfig, with the id of the RFC 6464
// audio-level header extension when the offer has it (the engine then
// reads the levels the client reports). Peer.Renegotiate answers a
// later offer on the same connection, an ICE restart after a network
// change, and the participant's stream runs on.
//
// ICEServers and TURNCredentials make what a WHIP or WHEP answer tells a
// client about STUN and TURN servers (RFC 9725 §4.6): Link header values,
// TURN with ephemeral credentials in coturn's use-auth-secret scheme.
//
// A peer whose ICE consent expires (RFC 7675; Config.FailedTimeout) is
// reported through Config.OnFailed, for the caller to remove the member
// with the reason "timeout".
package webrtc
