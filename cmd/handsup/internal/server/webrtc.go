package server

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/session"
	"github.com/handsup-audio/handsup/session/webrtc"
)

// errNoWebRTC is returned by WHIP and WHEP when WebRTC is off (404).
var errNoWebRTC = errors.New("WebRTC is not enabled on this server")

// answerTimeout bounds the gathering of an answer's candidates.
const answerTimeout = 10 * time.Second

// postWHIP joins a participant that sends (WHIP, RFC 9725): a speaker by
// default, or the role in ?role=; it hears the room's mix-minus on the
// same connection when its offer is sendrecv.
func (s *Server) postWHIP(w http.ResponseWriter, r *http.Request) {
	s.postWebRTC(w, r, "speaker")
}

// postWHEP joins a receive-only listener (WHEP).
func (s *Server) postWHEP(w http.ResponseWriter, r *http.Request) {
	s.postWebRTC(w, r, "listener")
}

// postWebRTC answers an SDP offer: the participant's id comes from ?id=
// (default: the token's identity), its role from ?role= (default role),
// and the credential from the Authorization header (never the URL): the
// admin token, or a participant token with the role's grant. The answer's Link headers carry the configured STUN and TURN
// servers, TURN with credentials made for this participant.
func (s *Server) postWebRTC(w http.ResponseWriter, r *http.Request, role string) {
	rm, ok := s.roomOf(w, r)
	if !ok {
		return
	}
	p := principalOf(r)
	id := joinIdentity(p, r.URL.Query().Get("id"))
	if q := r.URL.Query().Get("role"); q != "" {
		role = q
	}
	if !isSDP(r) {
		writeError(w, http.StatusUnsupportedMediaType, "the body must be an SDP offer, Content-Type: application/sdp")
		return
	}
	if err := s.allowJoin(p, rm, id, role); err != nil {
		writeErr(w, err)
		return
	}
	offer, ok := readOffer(w, r)
	if !ok {
		return
	}
	undo, err := s.useToken(p)
	if err != nil {
		writeErr(w, err)
		return
	}
	answer, err := s.joinWebRTC(r.Context(), rm, id, role, offer)
	if err != nil {
		undo()
		writeErr(w, err)
		return
	}
	w.Header().Set("Location", "/v1/rooms/"+rm.ID()+"/participants/"+id)
	for _, srv := range s.cfg.ICEServers.For(id, time.Now()) {
		w.Header().Add("Link", srv.Link())
	}
	w.Header().Set("Content-Type", "application/sdp")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// Media types of WebRTC signalling bodies.
const (
	sdpType  = "application/sdp"
	fragType = "application/trickle-ice-sdpfrag"
)

// bodyType is the request body's media type, parameters dropped.
func bodyType(r *http.Request) string {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt
}

// isSDP reports whether the request's body is SDP.
func isSDP(r *http.Request) bool { return bodyType(r) == sdpType }

// readOffer reads an SDP body, or answers why not.
func readOffer(w http.ResponseWriter, r *http.Request) (string, bool) {
	offer, err := io.ReadAll(r.Body)
	if err != nil {
		writeBodyError(w, err, "reading the offer: ")
		return "", false
	}
	return string(offer), true
}

// renegotiate answers a WebRTC participant's PATCH of its Location: a new
// SDP offer (answered with SDP), or a trickle-ICE fragment (RFC 8840:
// candidates are added, 204; new credentials restart ICE, answered with
// the server's fragment). An ICE restart keeps the participant's id,
// role, hand, tier and RTP stream.
func (s *Server) renegotiate(w http.ResponseWriter, r *http.Request, rm *room, p *engine.Participant) {
	m, ok := rm.Member(p.ID())
	var peer *webrtc.Peer
	if ok {
		peer, ok = m.Link().(*webrtc.Peer)
	}
	if !ok {
		writeError(w, http.StatusConflict, "participant "+p.ID()+" is not a WebRTC participant")
		return
	}
	offer, ok := readOffer(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), answerTimeout)
	defer cancel()
	answer, ctype := "", sdpType
	var err error
	if isSDP(r) {
		answer, err = peer.Renegotiate(ctx, offer)
	} else {
		answer, err = peer.ApplySDPFrag(ctx, offer)
		ctype = fragType
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	if answer == "" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, answer)
}

// joinWebRTC answers the offer and joins the participant with the
// negotiated SSRC and payload type.
func (s *Server) joinWebRTC(ctx context.Context, r *room, id, roleName, offer string) (string, error) {
	role, err := s.checkJoin(r, id, roleName)
	if err != nil {
		return "", err
	}
	if s.webrtc == nil {
		return "", errNoWebRTC
	}
	ctx, cancel := context.WithTimeout(ctx, answerTimeout)
	defer cancel()
	peer, answer, err := s.webrtc.Answer(ctx, offer)
	if err != nil {
		return "", err
	}
	cfg := engine.ParticipantConfig{Role: role}
	peer.Configure(&cfg)
	if _, err := r.Join(id, cfg, peer); err != nil {
		_ = peer.Close()
		return "", s.admit.count(err)
	}
	return answer, nil
}

// kickPeer removes the member whose link is p, for reason.
func (s *Server) kickPeer(p *webrtc.Peer, reason string) {
	for _, r := range s.roomList() {
		for _, m := range r.Members() {
			if m.Link() == p {
				gone := false
				if reason == session.ReasonTimeout {
					gone = m.Timeout() // counted with the idle timeouts
				} else {
					gone = r.Kick(m.ID(), reason) == nil
				}
				if gone {
					s.log.Info("WebRTC peer gone", "room", r.ID(), "participant", m.ID(), "reason", reason)
				}
				return
			}
		}
	}
	_ = p.Close() // never joined, or left already
}
