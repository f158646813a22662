package server

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/session/rtpudp"
	"github.com/handsup-audio/handsup/session/webrtc"
)

// route is one API endpoint; the table is the single source the mux and
// the OpenAPI test both read.
type route struct {
	method, pattern string
	auth            authKind
	handle          func(*Server, http.ResponseWriter, *http.Request)
}

type authKind int

const (
	authAdmin  authKind = iota // the admin token, when one is set
	authInvite                 // the admin token or, for joins, a signed invite
	// authSelf: the admin token or the participant's own invite, checked
	// in the handler (a WHIP/WHEP resource: leave, ICE restart).
	authSelf
	authNone
)

var apiRoutes = []route{
	{"GET", "/v1/openapi.json", authNone, (*Server).getOpenAPI},
	{"POST", "/v1/rooms", authAdmin, (*Server).postRoom},
	{"GET", "/v1/rooms", authAdmin, (*Server).getRooms},
	{"GET", "/v1/rooms/{room}", authAdmin, (*Server).getRoom},
	{"DELETE", "/v1/rooms/{room}", authAdmin, (*Server).deleteRoomHandler},
	{"POST", "/v1/rooms/{room}/participants", authInvite, (*Server).postParticipant},
	{"POST", "/v1/rooms/{room}/whip", authInvite, (*Server).postWHIP},
	{"POST", "/v1/rooms/{room}/whep", authInvite, (*Server).postWHEP},
	{"GET", "/v1/rooms/{room}/participants/{id}", authAdmin, (*Server).getParticipant},
	{"PATCH", "/v1/rooms/{room}/participants/{id}", authSelf, (*Server).patchParticipant},
	{"DELETE", "/v1/rooms/{room}/participants/{id}", authSelf, (*Server).deleteParticipant},
	{"POST", "/v1/rooms/{room}/participants/{id}/hand", authAdmin, (*Server).raiseHand},
	{"DELETE", "/v1/rooms/{room}/participants/{id}/hand", authAdmin, (*Server).lowerHand},
	{"POST", "/v1/rooms/{room}/invites", authAdmin, (*Server).postInvite},
	{"GET", "/v1/rooms/{room}/events", authAdmin, (*Server).getEvents},
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	paths := http.NewServeMux() // the same paths, any method: tells 405 from 404
	allowed := map[string][]string{}
	for _, rt := range apiRoutes {
		mux.HandleFunc(rt.method+" "+rt.pattern, s.guard(rt))
		if allowed[rt.pattern] == nil {
			paths.HandleFunc(rt.pattern, http.NotFound)
		}
		allowed[rt.pattern] = append(allowed[rt.pattern], rt.method)
	}
	// Requests under /v1 that match no route get a JSON 404 or 405, not
	// net/http's plain text.
	mux.HandleFunc("/v1/", func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := paths.Handler(r); pattern != "" {
			w.Header().Set("Allow", strings.Join(allowed[pattern], ", "))
			writeError(w, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
			return
		}
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	webRoutes(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() || s.draining.Load() {
			writeError(w, http.StatusServiceUnavailable, "not ready")
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	if s.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// guard checks the admin token (invite-carrying joins check their invite
// in the handler) and bounds the request body.
func (s *Server) guard(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		if rt.auth == authAdmin && !s.isAdmin(r) {
			s.unauthorized(w, r)
			return
		}
		rt.handle(s, w, r)
	}
}

func (s *Server) isAdmin(r *http.Request) bool {
	if s.cfg.AdminToken == "" {
		return true
	}
	got, ok := bearerToken(r)
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.AdminToken)) == 1
}

// bearerToken is the request's Authorization: Bearer credential.
func bearerToken(r *http.Request) (string, bool) {
	return strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
}

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="handsup"`)
	msg := "missing admin token: send Authorization: Bearer <token>"
	if r.Header.Get("Authorization") != "" {
		msg = "invalid admin token"
	}
	writeError(w, http.StatusUnauthorized, msg)
}

//go:embed openapi.json
var openAPIDocument []byte

func (s *Server) getOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPIDocument)
}

type roomView struct {
	ID           string            `json:"id"`
	InviteOnly   bool              `json:"invite_only"`
	MaxSpeakers  int               `json:"max_speakers"`
	TopN         int               `json:"top_n"`
	Participants int               `json:"participants"`
	Speakers     int               `json:"speakers"`
	Listeners    int               `json:"listeners"`
	HandsRaised  int               `json:"hands_raised"`
	Members      []participantView `json:"members,omitempty"`
}

func summary(r *room) roomView {
	cfg := r.Config()
	snap := r.Snapshot()
	return roomView{
		ID: r.ID(), InviteOnly: cfg.InviteOnly, MaxSpeakers: cfg.MaxSpeakers, TopN: cfg.TopN,
		Participants: snap.Members,
		Speakers:     snap.ByRole[engine.Speaker] + snap.ByRole[engine.Moderator],
		Listeners:    snap.ByRole[engine.Listener],
		HandsRaised:  snap.HandsUp,
	}
}

func (s *Server) postRoom(w http.ResponseWriter, r *http.Request) {
	var req createRoomRequest
	if !decode(w, r, &req) {
		return
	}
	rm, err := s.createRoom(req)
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Location", "/v1/rooms/"+rm.ID())
	writeJSON(w, http.StatusCreated, summary(rm))
}

func (s *Server) getRooms(w http.ResponseWriter, _ *http.Request) {
	rooms := s.roomList()
	out := make([]roomView, 0, len(rooms))
	for _, r := range rooms {
		out = append(out, summary(r))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	writeJSON(w, http.StatusOK, map[string]any{"rooms": out})
}

func (s *Server) roomOf(w http.ResponseWriter, r *http.Request) (*room, bool) {
	rm, err := s.room(r.PathValue("room"))
	if err != nil {
		writeErr(w, err)
		return nil, false
	}
	return rm, true
}

func (s *Server) getRoom(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.roomOf(w, r)
	if !ok {
		return
	}
	v := summary(rm)
	ps := rm.Participants()
	v.Members = make([]participantView, 0, len(ps))
	for _, p := range ps {
		v.Members = append(v.Members, rm.view(p))
	}
	sort.Slice(v.Members, func(i, j int) bool { return v.Members[i].ID < v.Members[j].ID })
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) deleteRoomHandler(w http.ResponseWriter, r *http.Request) {
	if err := s.deleteRoom(r.PathValue("room")); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) postParticipant(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.roomOf(w, r)
	if !ok {
		return
	}
	var req joinRequest
	if !decode(w, r, &req) {
		return
	}
	if !s.admit(w, r, rm, req.Invite, req.ID, req.Role) {
		return
	}
	v, err := s.join(rm, req)
	if err != nil {
		writeErr(w, err)
		return
	}
	w.Header().Set("Location", "/v1/rooms/"+rm.ID()+"/participants/"+v.ID)
	writeJSON(w, http.StatusCreated, v)
}

// admit checks a join's credential, or answers why not: invite-only rooms
// take a valid invite (for this room, id and role) from everyone; open
// rooms take the admin token or a valid invite.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, rm *room, invite, id, role string) bool {
	if !rm.Config().InviteOnly && s.isAdmin(r) {
		return true
	}
	if invite == "" {
		if rm.Config().InviteOnly {
			writeError(w, http.StatusForbidden, "room is invite-only: an invite is required")
		} else {
			s.unauthorized(w, r)
		}
		return false
	}
	if err := s.invites.verify(invite, rm.ID(), id, role, time.Now()); err != nil {
		writeError(w, http.StatusForbidden, err.Error())
		return false
	}
	return true
}

// authorizeSelf checks the credential of a request on participant id's
// own resource (its WHIP/WHEP Location), or answers why not: the admin
// token, or an invite for that room and id (any role: the participant may
// have been promoted since it joined). No credential, or one that is
// neither, is 401; an invite that is someone else's, expired or forged is
// 403. self reports that the invite, not the admin token, admitted it.
func (s *Server) authorizeSelf(w http.ResponseWriter, r *http.Request) (ok, self bool) {
	if s.isAdmin(r) {
		return true, false
	}
	token, ok := bearerToken(r)
	if !ok || token == "" {
		s.unauthorized(w, r)
		return false, false
	}
	err := s.invites.verifyHolder(token, r.PathValue("room"), r.PathValue("id"), time.Now())
	switch {
	case err == nil:
		return true, true
	case errors.Is(err, errInviteMalformed):
		w.Header().Set("WWW-Authenticate", `Bearer realm="handsup"`)
		writeError(w, http.StatusUnauthorized, "invalid credential: send the admin token or the participant's invite")
	default:
		writeError(w, http.StatusForbidden, err.Error())
	}
	return false, false
}

func (s *Server) participantOf(w http.ResponseWriter, r *http.Request) (*room, *engine.Participant, bool) {
	rm, ok := s.roomOf(w, r)
	if !ok {
		return nil, nil, false
	}
	p, found := rm.Participant(r.PathValue("id"))
	if !found {
		writeErr(w, fmt.Errorf("%w: %q", engine.ErrNoParticipant, r.PathValue("id")))
		return nil, nil, false
	}
	return rm, p, true
}

func (s *Server) getParticipant(w http.ResponseWriter, r *http.Request) {
	if rm, p, ok := s.participantOf(w, r); ok {
		writeJSON(w, http.StatusOK, rm.view(p))
	}
}

type patchRequest struct {
	Role   *string  `json:"role"`
	Muted  *bool    `json:"muted"`
	GainDB *float64 `json:"gain_db"`
}

// patchParticipant renegotiates a WebRTC participant (an SDP offer or a
// trickle-ICE fragment: the admin token or the participant's own invite)
// or changes its role, mute or gain (the admin token only).
func (s *Server) patchParticipant(w http.ResponseWriter, r *http.Request) {
	if t := bodyType(r); t == sdpType || t == fragType {
		if ok, _ := s.authorizeSelf(w, r); !ok {
			return
		}
		if rm, p, ok := s.participantOf(w, r); ok {
			s.renegotiate(w, r, rm, p)
		}
		return
	}
	if !s.isAdmin(r) {
		if token, _ := bearerToken(r); s.invites.verifyHolder(token, r.PathValue("room"), r.PathValue("id"), time.Now()) == nil {
			writeError(w, http.StatusForbidden, "changing role, muted or gain_db takes the admin token")
		} else {
			s.unauthorized(w, r)
		}
		return
	}
	rm, p, ok := s.participantOf(w, r)
	if !ok {
		return
	}
	var req patchRequest
	if !decode(w, r, &req) {
		return
	}
	var role engine.Role
	if req.Role != nil {
		var err error
		if role, err = engine.ParseRole(*req.Role); err != nil {
			writeError(w, http.StatusBadRequest, "role must be speaker, listener or moderator")
			return
		}
	}
	if req.GainDB != nil && (*req.GainDB < -60 || *req.GainDB > 20) {
		writeError(w, http.StatusBadRequest, "gain_db must be -60 to 20")
		return
	}
	if req.Role != nil {
		if err := p.SetRole(role); err != nil {
			writeErr(w, err)
			return
		}
	}
	if req.Muted != nil {
		p.SetMuted(*req.Muted)
	}
	if req.GainDB != nil {
		p.SetGainDB(*req.GainDB)
	}
	writeJSON(w, http.StatusOK, rm.view(p))
}

// deleteParticipant removes a participant: the admin token, or the
// participant's own invite (a WHIP/WHEP client leaving: reason "left").
func (s *Server) deleteParticipant(w http.ResponseWriter, r *http.Request) {
	ok, self := s.authorizeSelf(w, r)
	if !ok {
		return
	}
	rm, ok := s.roomOf(w, r)
	if !ok {
		return
	}
	reason := "removed"
	if self {
		reason = "left"
	}
	if err := rm.Kick(r.PathValue("id"), reason); err != nil {
		writeErr(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) raiseHand(w http.ResponseWriter, r *http.Request) {
	if rm, p, ok := s.participantOf(w, r); ok {
		p.RaiseHand()
		writeJSON(w, http.StatusOK, rm.view(p))
	}
}

func (s *Server) lowerHand(w http.ResponseWriter, r *http.Request) {
	if rm, p, ok := s.participantOf(w, r); ok {
		p.LowerHand()
		writeJSON(w, http.StatusOK, rm.view(p))
	}
}

type inviteRequest struct {
	ID         string `json:"id"`
	Role       string `json:"role"`
	TTLSeconds int    `json:"ttl_seconds"`
}

func (s *Server) postInvite(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.roomOf(w, r)
	if !ok {
		return
	}
	var req inviteRequest
	if !decode(w, r, &req) {
		return
	}
	if !idPattern.MatchString(req.ID) {
		writeError(w, http.StatusBadRequest, "participant id must be 1 to 128 letters, digits or ._~-")
		return
	}
	if _, err := engine.ParseRole(req.Role); err != nil {
		writeError(w, http.StatusBadRequest, "role must be speaker, listener or moderator")
		return
	}
	if req.TTLSeconds == 0 {
		req.TTLSeconds = 3600
	}
	if req.TTLSeconds < 1 || req.TTLSeconds > 7*24*3600 {
		writeError(w, http.StatusBadRequest, "ttl_seconds must be 1 to 604800")
		return
	}
	exp := time.Now().Add(time.Duration(req.TTLSeconds) * time.Second)
	token := s.invites.sign(invite{Room: rm.ID(), ID: req.ID, Role: req.Role, Expires: exp.Unix()})
	writeJSON(w, http.StatusCreated, map[string]any{
		"invite": token, "room": rm.ID(), "id": req.ID, "role": req.Role,
		"expires_at": exp.UTC().Format(time.RFC3339),
	})
}

func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) {
	if rm, ok := s.roomOf(w, r); ok {
		s.serveEvents(w, r, rm)
	}
}

// decode reads a JSON body into v, answering 400 or 413 itself. The
// Content-Type is not checked: curl -d sends form encoding by default.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.Decode(&struct{}{}) != io.EOF {
		err = errors.New("body holds more than one JSON value")
	}
	if err == nil {
		return true
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is over %d bytes", tooBig.Limit))
		return false
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("body is empty")
	}
	writeError(w, http.StatusBadRequest, "bad JSON: "+err.Error())
	return false
}

// writeErr maps an error to its status code.
func writeErr(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, errBadRequest), errors.Is(err, engine.ErrBadID), errors.Is(err, engine.ErrBadRole),
		errors.Is(err, webrtc.ErrBadOffer):
		status = http.StatusBadRequest
	case errors.Is(err, engine.ErrNoRoom), errors.Is(err, engine.ErrNoParticipant), errors.Is(err, engine.ErrLeft),
		errors.Is(err, errNoWebRTC):
		status = http.StatusNotFound
	case errors.Is(err, engine.ErrRoomExists), errors.Is(err, engine.ErrParticipantExists),
		errors.Is(err, rtpudp.ErrAddrTaken), errors.Is(err, engine.ErrStageFull),
		errors.Is(err, engine.ErrRoomClosed):
		status = http.StatusConflict
	case errors.Is(err, errDraining), errors.Is(err, engine.ErrEngineClosed), errors.Is(err, rtpudp.ErrClosed),
		errors.Is(err, webrtc.ErrClosed), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
	}
	writeError(w, status, err.Error())
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
