package server

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/handsup-audio/handsup/access"
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
	authAdmin authKind = iota // the admin token (guard checks)
	// authToken: the admin token or a participant token for the path's
	// room; the handler asks allow what it may do.
	authToken
	// authCookie: as authToken, and the token may come in the
	// handsup_token cookie (the event stream, for EventSource).
	authCookie
	authNone
)

var apiRoutes = []route{
	{"GET", "/v1/openapi.json", authNone, (*Server).getOpenAPI},
	{"POST", "/v1/rooms", authAdmin, (*Server).postRoom},
	{"GET", "/v1/rooms", authAdmin, (*Server).getRooms},
	{"GET", "/v1/rooms/{room}", authToken, (*Server).getRoom},
	{"DELETE", "/v1/rooms/{room}", authAdmin, (*Server).deleteRoomHandler},
	{"POST", "/v1/rooms/{room}/participants", authToken, (*Server).postParticipant},
	{"POST", "/v1/rooms/{room}/whip", authToken, (*Server).postWHIP},
	{"POST", "/v1/rooms/{room}/whep", authToken, (*Server).postWHEP},
	{"GET", "/v1/rooms/{room}/participants/{id}", authToken, (*Server).getParticipant},
	{"PATCH", "/v1/rooms/{room}/participants/{id}", authToken, (*Server).patchParticipant},
	{"DELETE", "/v1/rooms/{room}/participants/{id}", authToken, (*Server).deleteParticipant},
	{"POST", "/v1/rooms/{room}/participants/{id}/hand", authToken, (*Server).raiseHand},
	{"DELETE", "/v1/rooms/{room}/participants/{id}/hand", authToken, (*Server).lowerHand},
	{"GET", "/v1/rooms/{room}/hands", authToken, (*Server).getHands},
	{"POST", "/v1/rooms/{room}/invites", authAdmin, (*Server).postInvite},
	{"POST", "/v1/rooms/{room}/tokens", authAdmin, (*Server).postToken},
	{"DELETE", "/v1/tokens/{id}", authAdmin, (*Server).deleteToken},
	{"GET", "/v1/rooms/{room}/events", authCookie, (*Server).getEvents},
	{"POST", "/v1/rooms/{room}/events/cookie", authToken, (*Server).postEventsCookie},
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
	if s.cfg.Pprof { // profiles and goroutine dumps are for the admin only
		for path, h := range map[string]http.HandlerFunc{
			"/debug/pprof/": pprof.Index, "/debug/pprof/cmdline": pprof.Cmdline,
			"/debug/pprof/profile": pprof.Profile, "/debug/pprof/symbol": pprof.Symbol,
			"/debug/pprof/trace": pprof.Trace,
		} {
			mux.HandleFunc(path, s.guard(route{auth: authAdmin,
				handle: func(_ *Server, w http.ResponseWriter, r *http.Request) { h(w, r) }}))
		}
	}
	return mux
}

// guard works out the request's one principal (the admin, a participant
// token for the path's room, or nobody), refuses a bad credential and,
// on admin routes, anyone but the admin, and bounds the request body.
// Handlers of the other routes ask allow.
func (s *Server) guard(rt route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			defer s.limitBody(w, r)()
		}
		if rt.auth != authNone {
			p, err := s.authenticate(r, rt.auth == authCookie)
			if err == nil && rt.auth == authAdmin {
				err = s.allow(p, nil, actAdmin, "")
			}
			if err != nil {
				writeErr(w, err)
				return
			}
			r = withPrincipal(r, p)
		}
		rt.handle(s, w, r)
	}
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
	NoDTX        bool              `json:"no_dtx"`
	Participants int               `json:"participants"`
	Speakers     int               `json:"speakers"`
	Listeners    int               `json:"listeners"`
	HandsRaised  int               `json:"hands_raised"`
	Hands        []string          `json:"hands"` // the hand queue, in raise order
	Members      []participantView `json:"members,omitempty"`
}

func summary(r *room) roomView {
	cfg := r.Config()
	snap := r.Snapshot()
	return roomView{
		ID: r.ID(), InviteOnly: cfg.InviteOnly, MaxSpeakers: cfg.MaxSpeakers, TopN: cfg.TopN, NoDTX: cfg.NoDTX,
		Participants: snap.Members,
		Speakers:     snap.ByRole[engine.Speaker] + snap.ByRole[engine.Moderator],
		Listeners:    snap.ByRole[engine.Listener],
		HandsRaised:  snap.HandsUp,
		Hands:        snap.Hands,
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
	if err := s.allow(principalOf(r), rm, actRoom, ""); err != nil {
		writeErr(w, err)
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
	p := principalOf(r)
	req.ID = joinIdentity(p, req.ID)
	if err := s.allowJoin(p, rm, req.ID, req.Role); err != nil {
		writeErr(w, err)
		return
	}
	undo, err := s.useToken(p)
	if err != nil {
		writeErr(w, err)
		return
	}
	v, err := s.join(rm, req)
	if err != nil {
		undo()
		writeErr(w, err)
		return
	}
	w.Header().Set("Location", "/v1/rooms/"+rm.ID()+"/participants/"+v.ID)
	writeJSON(w, http.StatusCreated, v)
}

// participantOf is the path's room and participant, once the principal
// may do each of acts on it.
func (s *Server) participantOf(w http.ResponseWriter, r *http.Request, acts ...action) (*room, *engine.Participant, bool) {
	rm, ok := s.roomOf(w, r)
	if !ok {
		return nil, nil, false
	}
	id := r.PathValue("id")
	for _, act := range acts {
		if err := s.allow(principalOf(r), rm, act, id); err != nil {
			writeErr(w, err)
			return nil, nil, false
		}
	}
	p, found := rm.Participant(id)
	if !found {
		writeErr(w, fmt.Errorf("%w: %q", engine.ErrNoParticipant, id))
		return nil, nil, false
	}
	return rm, p, true
}

func (s *Server) getParticipant(w http.ResponseWriter, r *http.Request) {
	if rm, p, ok := s.participantOf(w, r, actView); ok {
		writeJSON(w, http.StatusOK, rm.view(p))
	}
}

type patchRequest struct {
	Role   *string  `json:"role"`
	Muted  *bool    `json:"muted"`
	GainDB *float64 `json:"gain_db"`
}

// patchParticipant renegotiates a WebRTC participant (an SDP offer or a
// trickle-ICE fragment) or changes its role, mute or gain; allow decides
// each field.
func (s *Server) patchParticipant(w http.ResponseWriter, r *http.Request) {
	if t := bodyType(r); t == sdpType || t == fragType {
		if rm, p, ok := s.participantOf(w, r, actRenegotiate); ok {
			s.renegotiate(w, r, rm, p)
		}
		return
	}
	var req patchRequest
	if !decode(w, r, &req) {
		return
	}
	var role engine.Role
	var acts []action
	if req.Role != nil {
		var err error
		if role, err = engine.ParseRole(*req.Role); err != nil {
			writeError(w, http.StatusBadRequest, "role must be speaker, listener or moderator")
			return
		}
		acts = append(acts, actSetRole)
		if role == engine.Listener {
			acts[len(acts)-1] = actStepDown
		}
	}
	if req.Muted != nil {
		acts = append(acts, actMute)
	}
	if req.GainDB != nil {
		if *req.GainDB < -60 || *req.GainDB > 20 {
			writeError(w, http.StatusBadRequest, "gain_db must be -60 to 20")
			return
		}
		acts = append(acts, actGain)
	}
	if len(acts) == 0 {
		acts = append(acts, actView)
	}
	rm, p, ok := s.participantOf(w, r, acts...)
	if !ok {
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

// deleteParticipant removes a participant: its own token leaves (reason
// "left"); a moderator or the admin kicks (reason "kicked"), and the
// identity may not rejoin the room with a token for Config.KickBan.
func (s *Server) deleteParticipant(w http.ResponseWriter, r *http.Request) {
	rm, _, ok := s.participantOf(w, r, actLeave)
	if !ok {
		return
	}
	id, pr := r.PathValue("id"), principalOf(r)
	reason := engine.ReasonKicked
	if pr.kind == participant && pr.claims.Identity == id {
		reason = engine.ReasonLeft
	}
	if err := rm.Kick(id, reason); err != nil {
		writeErr(w, err)
		return
	}
	if reason == engine.ReasonKicked && s.cfg.KickBan > 0 {
		now := s.now()
		if err := s.tokens.Ban(rm.ID(), id, now.Add(s.cfg.KickBan), now); err != nil {
			s.log.Warn("kicked participant not banned", "room", rm.ID(), "participant", id, "err", err)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) raiseHand(w http.ResponseWriter, r *http.Request) {
	if rm, p, ok := s.participantOf(w, r, actRaiseHand); ok {
		p.RaiseHand()
		writeJSON(w, http.StatusOK, rm.view(p))
	}
}

func (s *Server) lowerHand(w http.ResponseWriter, r *http.Request) {
	if rm, p, ok := s.participantOf(w, r, actLowerHand); ok {
		p.LowerHand()
		writeJSON(w, http.StatusOK, rm.view(p))
	}
}

func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.roomOf(w, r)
	if !ok {
		return
	}
	if err := s.allow(principalOf(r), rm, actEvents, ""); err != nil {
		writeErr(w, err)
		return
	}
	s.serveEvents(w, r, rm)
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
	if errors.Is(err, io.EOF) {
		err = errors.New("body is empty")
	}
	writeBodyError(w, err, "bad JSON: ")
	return false
}

// writeBodyError answers a request whose body could not be read or
// parsed: 413 over MaxBodyBytes, 408 past BodyTimeout, else 400 with
// what said first.
func writeBodyError(w http.ResponseWriter, err error, what string) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body is over %d bytes", tooBig.Limit))
	case errors.Is(err, os.ErrDeadlineExceeded):
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusRequestTimeout, "the body did not arrive in time")
	default:
		writeError(w, http.StatusBadRequest, what+err.Error())
	}
}

// limitBody bounds r's body to Config.MaxBodyBytes and the time to read
// it to Config.BodyTimeout: a deadline on the connection, cleared once
// the body is read or by the returned func (the handler's end). It is not
// http.Server.ReadTimeout, which would also cut event streams.
func (s *Server) limitBody(w http.ResponseWriter, r *http.Request) (clear func()) {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	if r.ContentLength == 0 {
		return func() {}
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout)) != nil {
		return func() {}
	}
	b := &deadlineBody{ReadCloser: r.Body, rc: rc}
	r.Body = b
	return b.clear
}

// deadlineBody clears the connection's read deadline once its body has
// been read to the end or failed.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	once sync.Once
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.clear()
	}
	return n, err
}

func (b *deadlineBody) clear() { b.once.Do(func() { _ = b.rc.SetReadDeadline(time.Time{}) }) }

// writeErr maps an error to its status code.
func writeErr(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, errUnauthorized):
		status = http.StatusUnauthorized
		challenge := `Bearer realm="handsup"`
		if errors.Is(err, errInvalidToken) {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	case errors.Is(err, errForbidden), errors.Is(err, errBanned):
		status = http.StatusForbidden
	case errors.Is(err, errJoinRate):
		status = http.StatusTooManyRequests
	case errors.Is(err, access.ErrFull), errors.Is(err, engine.ErrTooManyRooms), errors.Is(err, engine.ErrEngineFull),
		errors.Is(err, engine.ErrOverloaded), errors.Is(err, errStreamsFull):
		status = http.StatusServiceUnavailable
	case errors.Is(err, errBadRequest), errors.Is(err, engine.ErrBadID), errors.Is(err, engine.ErrBadRole),
		errors.Is(err, webrtc.ErrBadOffer), errors.Is(err, rtpudp.ErrBadAddr), errors.Is(err, rtpudp.ErrOwnAddr):
		status = http.StatusBadRequest
	case errors.Is(err, engine.ErrNoRoom), errors.Is(err, engine.ErrNoParticipant), errors.Is(err, engine.ErrLeft),
		errors.Is(err, errNoWebRTC):
		status = http.StatusNotFound
	case errors.Is(err, engine.ErrRoomExists), errors.Is(err, engine.ErrParticipantExists),
		errors.Is(err, rtpudp.ErrAddrTaken), errors.Is(err, engine.ErrStageFull), errors.Is(err, engine.ErrRoomFull),
		errors.Is(err, engine.ErrRoomClosed):
		status = http.StatusConflict
	case errors.Is(err, errDraining), errors.Is(err, engine.ErrEngineClosed), errors.Is(err, rtpudp.ErrClosed),
		errors.Is(err, webrtc.ErrClosed), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
	}
	if n := retryAfterSeconds(err); n > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(n))
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
