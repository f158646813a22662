package server

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"regexp"

	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/jitter"
	"github.com/handsup-audio/handsup/session/rtpudp"
)

// errBadRequest wraps every error that is the client's fault (400).
var (
	errBadRequest = errors.New("bad request")
	errDraining   = errors.New("server is shutting down")
)

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

type createRoomRequest struct {
	ID          string `json:"id"`
	InviteOnly  bool   `json:"invite_only"`
	MaxSpeakers int    `json:"max_speakers"`
	TopN        int    `json:"top_n"`
	// NoDTX keeps every output at 50 packets a second through silence,
	// for players that cannot bridge Opus DTX gaps; default false (DTX).
	NoDTX bool `json:"no_dtx"`
}

func (s *Server) createRoom(req createRoomRequest) (*room, error) {
	switch {
	case s.draining.Load():
		return nil, errDraining
	case !idPattern.MatchString(req.ID):
		return nil, badRequest("room id must be 1 to 128 letters, digits or ._~-")
	case req.MaxSpeakers < 0 || req.MaxSpeakers > 1000:
		return nil, badRequest("max_speakers must be 0 (the server's default, %d) to 1000", s.cfg.MaxSpeakers)
	case req.TopN < 0 || req.TopN > 16:
		return nil, badRequest("top_n must be 0 (default 4) to 16")
	}
	if req.MaxSpeakers == 0 {
		req.MaxSpeakers = s.cfg.MaxSpeakers
	}
	var nonce [12]byte
	_, _ = rand.Read(nonce[:])
	r := &room{batch: s.udp.NewBatch(), hub: newHub(s.cfg.EventBacklog, s.cfg.MaxRoomEventStreams, &s.events),
		instance: base64.RawURLEncoding.EncodeToString(nonce[:])}
	sr, err := s.sessions.NewRoom(req.ID, engine.RoomConfig{
		InviteOnly:      req.InviteOnly,
		MaxSpeakers:     req.MaxSpeakers,
		MaxParticipants: s.cfg.MaxRoomParticipants,
		TopN:            req.TopN,
		NoDTX:           req.NoDTX,
		Jitter:          jitter.Config{ExtraDelay: s.cfg.JitterExtraDelay},
		Send:            r.batch.SendPart, // split across workers for large rooms, outside the room's lock
		AfterTick:       r.batch.Flush,
		OnEvent:         func(e engine.Event) { s.onEvent(r, e) },
	})
	if err != nil {
		return nil, s.admit.count(err)
	}
	r.Room = sr
	s.mu.Lock()
	s.rooms[req.ID] = r
	s.mu.Unlock()
	s.log.Info("room created", "room", req.ID, "invite_only", req.InviteOnly,
		"max_speakers", req.MaxSpeakers, "top_n", sr.Config().TopN)
	return r, nil
}

func (s *Server) room(id string) (*room, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rooms[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q", engine.ErrNoRoom, id)
	}
	return r, nil
}

func (s *Server) roomList() []*room {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*room, 0, len(s.rooms))
	for _, r := range s.rooms {
		out = append(out, r)
	}
	return out
}

func (s *Server) deleteRoom(id string) error {
	s.mu.Lock()
	r, ok := s.rooms[id]
	delete(s.rooms, id)
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", engine.ErrNoRoom, id)
	}
	err := s.sessions.CloseRoom(id) // every participant leaves; the session frees their addresses
	r.hub.close()
	s.log.Info("room closed", "room", id)
	return err
}

type rtpRequest struct {
	// Addr is where the client sends from; without it the client gets a
	// join SSRC and the server learns its address (behind a NAT).
	Addr        string `json:"addr"`
	RecvAddr    string `json:"recv_addr"` // where it wants its stream; default addr
	PayloadType *int   `json:"payload_type"`
	// REDPayloadType, when set, is the client's RED (RFC 2198) payload
	// type: it receives RED and may send it.
	REDPayloadType int `json:"red_payload_type"`
	// AudioLevelExtID, when set, is the id of the RFC 6464 audio-level
	// header extension in the client's RTP (1 to 14, one-byte form): the
	// level it reports shows in the participant's reported_level.
	AudioLevelExtID int `json:"audio_level_ext_id"`
}

type joinRequest struct {
	ID   string     `json:"id"`
	Role string     `json:"role"`
	RTP  rtpRequest `json:"rtp"`
}

type participantView struct {
	ID         string  `json:"id"`
	Role       string  `json:"role"`
	Muted      bool    `json:"muted"`
	HandRaised bool    `json:"hand_raised"`
	GainDB     float64 `json:"gain_db"`
	Level      uint8   `json:"level"` // RFC 6464: 0 loud .. 127 silent, as the server measures it
	// ReportedLevel is the RFC 6464 level a speaker's client reports in its
	// header extension, when it sends one: its claim, beside Level.
	ReportedLevel  *reportedLevelView `json:"reported_level,omitempty"`
	Speaking       bool               `json:"speaking"`
	SSRC           uint32             `json:"ssrc"`
	Tier           string             `json:"tier"` // output quality tier, e.g. hi, mid, low
	PayloadType    int                `json:"payload_type,omitempty"`
	REDPayloadType int                `json:"red_payload_type,omitempty"`
	RTPAddr        string             `json:"rtp_addr,omitempty"`
	// JoinSSRC, in the join answer of a client that gave no rtp.addr, is
	// the SSRC its first packets must carry (RTP, or an RTCP receiver
	// report's sender SSRC): the server latches onto the address they
	// come from, and follows it when the client's NAT rebinds.
	JoinSSRC      uint32 `json:"join_ssrc,omitempty"`
	RecvAddr      string `json:"recv_addr,omitempty"`
	ServerRTPAddr string `json:"server_rtp_addr,omitempty"`
	// Reception is what the participant's RTCP receiver reports say about
	// the stream sent to it; Uplink is what the server measures of a
	// speaker's incoming stream.
	Reception *receptionView `json:"reception,omitempty"`
	Uplink    *uplinkView    `json:"uplink,omitempty"`
}

// join validates a join request, declares the client's address to the
// transport and adds the participant to the room.
func (s *Server) join(r *room, req joinRequest) (participantView, error) {
	role, err := s.checkJoin(r, req.ID, req.Role)
	if err != nil {
		return participantView{}, err
	}
	var addr, recv netip.AddrPort
	ok := true
	if req.RTP.Addr != "" {
		if addr, ok = parseClientAddr(req.RTP.Addr); !ok {
			return participantView{}, badRequest("rtp.addr must be the client's ip:port, for example 127.0.0.1:6000, or absent (the server learns it)")
		}
	} else if req.RTP.RecvAddr != "" {
		return participantView{}, badRequest("rtp.recv_addr needs rtp.addr: without it the stream goes where the client's join SSRC comes from")
	}
	if req.RTP.RecvAddr != "" {
		if recv, ok = parseClientAddr(req.RTP.RecvAddr); !ok {
			return participantView{}, badRequest("rtp.recv_addr must be an ip:port, for example 127.0.0.1:7000")
		}
	}
	pt := 111
	if req.RTP.PayloadType != nil {
		pt = *req.RTP.PayloadType
	}
	if pt < 96 || pt > 127 {
		return participantView{}, badRequest("rtp.payload_type must be a dynamic payload type, 96 to 127")
	}
	redPT := req.RTP.REDPayloadType
	if redPT != 0 && (redPT < 96 || redPT > 127 || redPT == pt) {
		return participantView{}, badRequest("rtp.red_payload_type must be a dynamic payload type, 96 to 127, other than payload_type")
	}
	if id := req.RTP.AudioLevelExtID; id < 0 || id > 14 {
		return participantView{}, badRequest("rtp.audio_level_ext_id must be 1 to 14 (RFC 8285 one-byte form), or 0 for none")
	}
	var peer *rtpudp.Peer
	var joinSSRC uint32
	if addr.IsValid() {
		peer, err = s.udp.AddPeer(addr, recv, r.batch)
	} else {
		peer, joinSSRC, err = s.addLatchingPeer(r)
	}
	if err != nil {
		return participantView{}, err
	}
	m, err := r.Join(req.ID, engine.ParticipantConfig{
		Role: role, PayloadType: uint8(pt), REDPayloadType: uint8(redPT),
		AudioLevelExtID: uint8(req.RTP.AudioLevelExtID)}, peer)
	if err != nil {
		_ = peer.Close()
		return participantView{}, s.admit.count(err)
	}
	v := r.view(m.Participant())
	v.PayloadType = pt
	v.ServerRTPAddr = s.publicRTPAddr()
	v.JoinSSRC = joinSSRC
	return v, nil
}

// addLatchingPeer declares a participant by a random join SSRC.
func (s *Server) addLatchingPeer(r *room) (*rtpudp.Peer, uint32, error) {
	var b [4]byte
	for {
		_, _ = rand.Read(b[:])
		ssrc := binary.BigEndian.Uint32(b[:])
		if ssrc == 0 {
			continue
		}
		p, err := s.udp.AddLatchingPeer(ssrc, r.batch)
		if !errors.Is(err, rtpudp.ErrSSRCTaken) {
			return p, ssrc, err
		}
	}
}

// checkJoin refuses a join to rm while draining, with a bad id or role,
// or past the join rate or the room's cap.
func (s *Server) checkJoin(rm *room, id, role string) (engine.Role, error) {
	if s.draining.Load() {
		return 0, errDraining
	}
	if !idPattern.MatchString(id) {
		return 0, badRequest("participant id must be 1 to 128 letters, digits or ._~-")
	}
	r, err := engine.ParseRole(role)
	if err != nil {
		return 0, badRequest("role must be speaker, listener or moderator")
	}
	return r, s.checkCaps(rm)
}

// parseClientAddr parses an ip:port; the transport refuses (and counts)
// the addresses no client can rightly have.
func parseClientAddr(s string) (netip.AddrPort, bool) {
	a, err := netip.ParseAddrPort(s)
	return a, err == nil
}

// view is a participant as the API shows it.
func (r *room) view(p *engine.Participant) participantView {
	st := p.Stats()
	v := participantView{
		ID: st.ID, Role: st.Role.String(), Muted: st.Muted, HandRaised: st.HandRaised,
		GainDB: st.GainDB, Level: st.Level, Speaking: st.Mixed, SSRC: st.SSRC,
		ReportedLevel: reportedLevel(&st),
	}
	if tiers := r.Config().Tiers; st.Tier < len(tiers) {
		v.Tier = tiers[st.Tier].Name
	}
	if m, ok := r.Member(p.ID()); ok {
		if peer, ok := m.Link().(*rtpudp.Peer); ok && peer.Remote().IsValid() { // else not latched yet
			v.RTPAddr = peer.Remote().String()
			v.RecvAddr = peer.SendTo().String()
		}
		v.PayloadType = int(p.PayloadType())
		v.REDPayloadType = int(p.REDPayloadType())
		v.Reception = reception(m)
		v.Uplink = uplink(m, &st)
	}
	return v
}

// onEvent logs a room's events and tells the room's event subscribers. It
// runs synchronously in the engine: quick, never blocking. The session
// layer has already closed a leaver's link and started or stopped a
// speaker's RTCP side.
func (s *Server) onEvent(r *room, e engine.Event) {
	switch e.Kind {
	case engine.EventJoined:
		s.log.Info("participant joined", "room", e.Room, "participant", e.Participant, "role", e.Role.String())
	case engine.EventLeft:
		s.log.Info("participant left", "room", e.Room, "participant", e.Participant, "reason", e.Reason)
	case engine.EventRole:
		s.log.Info("role changed", "room", e.Room, "participant", e.Participant, "role", e.Role.String())
	}
	r.hub.publish(eventFrom(e))
}
