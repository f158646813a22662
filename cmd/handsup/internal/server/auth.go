package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/handsup-audio/handsup/access"
)

// Errors of the permission check; writeErr maps them to statuses.
var (
	// errUnauthorized: no credential, or one that is neither the admin
	// token nor a valid participant token (401 with WWW-Authenticate).
	errUnauthorized = errors.New("unauthorized")
	// errForbidden: a valid credential that does not allow this (403).
	errForbidden = errors.New("forbidden")
	// errBanned: the token's identity was kicked from the room and the ban
	// has not ended (403, saying until when).
	errBanned = errors.New("banned")
	// errInvalidToken: a bearer credential that does not verify
	// (malformed, forged, expired, revoked): 401 with error="invalid_token".
	errInvalidToken = fmt.Errorf("%w: invalid token", errUnauthorized)
)

// maxTokenTTL is the longest lifetime of a participant token, issued or
// verified.
const maxTokenTTL = 24 * time.Hour

// tokenCookie carries a participant token to the event stream, which a
// browser's EventSource cannot give an Authorization header.
const tokenCookie = "handsup_token"

// principalKind is who a request comes from.
type principalKind int

const (
	nobody      principalKind = iota // no credential
	admin                            // the admin token, or no admin token configured
	participant                      // a participant token for the path's room
)

// principal is the one credential of a request, worked out once by guard.
type principal struct {
	kind   principalKind
	claims access.Claims // participant only
}

type principalKey struct{}

// principalOf is the request's principal, as guard found it.
func principalOf(r *http.Request) principal {
	p, _ := r.Context().Value(principalKey{}).(principal)
	return p
}

// authenticate finds the request's principal: the admin token, or a
// participant token (Authorization: Bearer; on the event stream also the
// handsup_token cookie) verified for the path's room. A token that does
// not verify is errUnauthorized; a token for another room, errForbidden.
// Without a credential the principal is the admin when no admin token is
// configured, else nobody.
func (s *Server) authenticate(r *http.Request, cookie bool) (principal, error) {
	token, ok := bearerToken(r)
	if !ok && r.Header.Get("Authorization") == "" && cookie {
		if c, err := r.Cookie(tokenCookie); err == nil && c.Value != "" {
			token, ok = c.Value, true
		}
	}
	if !ok || token == "" {
		if s.cfg.AdminToken == "" {
			return principal{kind: admin}, nil
		}
		return principal{}, nil
	}
	if s.cfg.AdminToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) == 1 {
		return principal{kind: admin}, nil
	}
	c, err := s.tokens.Verify(token, s.now())
	if err != nil {
		return principal{}, fmt.Errorf("%w: %w", errInvalidToken, err)
	}
	if room := r.PathValue("room"); room != "" && c.Room != room {
		return principal{}, fmt.Errorf("%w: the token is for another room", errForbidden)
	}
	if c.Instance != "" {
		if rm, err := s.room(c.Room); err == nil && rm.instance != c.Instance {
			return principal{}, fmt.Errorf("%w: the token is for an earlier room %s, since deleted", errInvalidToken, c.Room)
		}
	}
	return principal{kind: participant, claims: c}, nil
}

// bearerToken is the request's Authorization: Bearer credential.
func bearerToken(r *http.Request) (string, bool) {
	return strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
}

// action is something a request asks to do; allow decides.
type action int

const (
	actAdmin         action = iota // anything only the admin does
	actJoinListener                // join as a listener (needs listen)
	actJoinSpeaker                 // join on stage (needs speak)
	actJoinModerator               // join as a moderator (needs moderate)
	actView                        // read a participant, with its reception
	actLeave                       // DELETE a participant: self leaves, others are kicked
	actRaiseHand                   // raise a hand
	actLowerHand                   // lower a hand
	actMute                        // set muted
	actStepDown                    // set role listener
	actSetRole                     // set any other role
	actGain                        // set gain_db
	actRenegotiate                 // PATCH an SDP offer or trickle-ICE fragment
	actHands                       // read the hand queue
	actEvents                      // read the event stream
	actRoom                        // read the room and its members
)

// allow is every permission in one place: whether p may do act in room
// rm on participant target ("" when the action names none). Admins do
// everything but join an invite-only room; a participant token acts in
// its own room only, on itself for the self-service actions, and on
// others with the moderate grant; a banned identity does nothing there.
func (s *Server) allow(p principal, rm *room, act action, target string) error {
	inviteOnly := rm != nil && rm.Config().InviteOnly
	join := act == actJoinListener || act == actJoinSpeaker || act == actJoinModerator
	switch p.kind {
	case nobody:
		if join && inviteOnly {
			return fmt.Errorf("%w: the room is invite-only: a participant token is required", errForbidden)
		}
		return fmt.Errorf("%w: send Authorization: Bearer <admin token or participant token>", errUnauthorized)
	case admin:
		if join && inviteOnly {
			return fmt.Errorf("%w: the room is invite-only: a participant token is required, even from the admin", errForbidden)
		}
		return nil
	}
	c := p.claims
	if rm == nil || act == actAdmin {
		return fmt.Errorf("%w: this takes the admin token", errForbidden)
	}
	if until, banned := s.tokens.Banned(rm.ID(), c.Identity, s.now()); banned {
		return fmt.Errorf("%w: %s was removed from room %s and may not come back until %s",
			errBanned, c.Identity, rm.ID(), until.UTC().Format(time.RFC3339))
	}
	self := target == c.Identity
	var ok bool
	switch act {
	case actJoinListener:
		ok = self && c.Has(access.Listen)
	case actJoinSpeaker:
		ok = self && c.Has(access.Speak)
	case actJoinModerator:
		ok = self && c.Has(access.Moderate)
	case actEvents:
		ok = true
	case actView, actLeave, actLowerHand, actMute, actStepDown:
		ok = self || c.Has(access.Moderate)
	case actRaiseHand, actRenegotiate:
		ok = self
	case actSetRole:
		ok = !self && c.Has(access.Moderate)
	case actHands, actRoom:
		ok = c.Has(access.Moderate)
	}
	if !ok {
		return fmt.Errorf("%w: the token of %s (grants %v) does not allow this", errForbidden, c.Identity, c.Grants)
	}
	return nil
}

// allowJoin checks a join of participant id in role name; an unknown role
// is a bad request once the principal is known.
func (s *Server) allowJoin(p principal, rm *room, id, roleName string) error {
	act := actJoinListener
	switch roleName {
	case "listener":
	case "speaker":
		act = actJoinSpeaker
	case "moderator":
		act = actJoinModerator
	default:
		if err := s.allow(p, rm, actEvents, ""); err != nil {
			return err
		}
		return badRequest("role must be speaker, listener or moderator")
	}
	return s.allow(p, rm, act, id)
}

// useToken counts a join against a use-limited participant token (a
// token used up is errForbidden); undo gives the use back when the join
// fails.
func (s *Server) useToken(p principal) (undo func(), err error) {
	if p.kind != participant {
		return func() {}, nil
	}
	if err := s.tokens.Use(p.claims, s.now()); err != nil {
		if errors.Is(err, access.ErrUsedUp) {
			err = fmt.Errorf("%w: the token has joined its %d times (%w)", errForbidden, p.claims.MaxUses, err)
		}
		return nil, err
	}
	return func() { s.tokens.Unuse(p.claims) }, nil
}

// joinIdentity is the participant id a join asks for: the one given, or
// the token's identity.
func joinIdentity(p principal, id string) string {
	if id == "" && p.kind == participant {
		return p.claims.Identity
	}
	return id
}

type tokenRequest struct {
	Identity   string         `json:"identity"`
	Grants     []access.Grant `json:"grants"`
	TTLSeconds int            `json:"ttl_seconds"`
	// MaxUses is how many joins the token allows; default 0, no limit.
	MaxUses int `json:"max_uses"`
}

type tokenView struct {
	Token     string         `json:"token"`
	ID        string         `json:"id"`
	Room      string         `json:"room"`
	Identity  string         `json:"identity"`
	Grants    []access.Grant `json:"grants"`
	ExpiresAt string         `json:"expires_at"`
	MaxUses   int            `json:"max_uses,omitempty"`
}

// maxUses bounds a token's max_uses.
const maxUses = 1000

// issue mints a participant token for room; when the room exists, the
// token is bound to this instance of it.
func (s *Server) issue(room string, req tokenRequest) (tokenView, error) {
	if !idPattern.MatchString(req.Identity) {
		return tokenView{}, badRequest("identity must be 1 to 128 letters, digits or ._~-")
	}
	if req.TTLSeconds == 0 {
		req.TTLSeconds = 3600
	}
	if req.TTLSeconds < 1 || req.TTLSeconds > int(maxTokenTTL/time.Second) {
		return tokenView{}, badRequest("ttl_seconds must be 1 to %d", int(maxTokenTTL/time.Second))
	}
	if len(req.Grants) == 0 {
		return tokenView{}, badRequest("grants must name at least one of listen, speak, moderate")
	}
	if req.MaxUses < 0 || req.MaxUses > maxUses {
		return tokenView{}, badRequest("max_uses must be 0 (no limit) to %d", maxUses)
	}
	claims := access.Claims{Room: room, Identity: req.Identity, Grants: req.Grants, MaxUses: req.MaxUses}
	if rm, err := s.room(room); err == nil {
		claims.Instance = rm.instance
	}
	tok, c, err := s.tokens.Issue(claims, s.now(), time.Duration(req.TTLSeconds)*time.Second)
	if errors.Is(err, access.ErrInvalid) {
		return tokenView{}, badRequest("%v", err)
	}
	if err != nil {
		return tokenView{}, err
	}
	return tokenView{Token: tok, ID: c.ID, Room: c.Room, Identity: c.Identity, Grants: c.Grants,
		ExpiresAt: c.ExpiresAt.UTC().Format(time.RFC3339), MaxUses: c.MaxUses}, nil
}

// postToken issues a participant token (admin).
func (s *Server) postToken(w http.ResponseWriter, r *http.Request) {
	room := r.PathValue("room")
	if !idPattern.MatchString(room) {
		writeErr(w, badRequest("room id must be 1 to 128 letters, digits or ._~-"))
		return
	}
	var req tokenRequest
	if !decode(w, r, &req) {
		return
	}
	v, err := s.issue(room, req)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

// roleGrants are the grants an invite for a role carries.
var roleGrants = map[string][]access.Grant{
	"listener":  {access.Listen},
	"speaker":   {access.Listen, access.Speak},
	"moderator": {access.Listen, access.Speak, access.Moderate},
}

type inviteRequest struct {
	ID         string `json:"id"`
	Role       string `json:"role"`
	TTLSeconds int    `json:"ttl_seconds"`
	// MaxUses is how many joins the invite allows; default 1 (absent),
	// 0: no limit until it expires.
	MaxUses *int `json:"max_uses"`
}

// postInvite issues a participant token with the grants of a role
// (admin): the invite of earlier versions, now an access token.
func (s *Server) postInvite(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.roomOf(w, r)
	if !ok {
		return
	}
	var req inviteRequest
	if !decode(w, r, &req) {
		return
	}
	grants, ok := roleGrants[req.Role]
	if !ok {
		writeError(w, http.StatusBadRequest, "role must be speaker, listener or moderator")
		return
	}
	uses := 1
	if req.MaxUses != nil {
		uses = *req.MaxUses
	}
	v, err := s.issue(rm.ID(), tokenRequest{Identity: req.ID, Grants: grants, TTLSeconds: req.TTLSeconds, MaxUses: uses})
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{
		"invite": v.Token, "token": v.Token, "token_id": v.ID, "room": v.Room, "id": v.Identity,
		"role": req.Role, "grants": v.Grants, "expires_at": v.ExpiresAt, "max_uses": v.MaxUses,
	})
}

// deleteToken revokes a token by id (admin). The server does not know the
// token's expiry, so the id stays revoked for the longest lifetime a
// token can have.
func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	if err := s.tokens.Revoke(r.PathValue("id"), now.Add(maxTokenTTL), now); err != nil {
		writeErr(w, err)
		return
	}
	s.log.Info("token revoked", "token_id", r.PathValue("id"))
	w.WriteHeader(http.StatusNoContent)
}

// postEventsCookie sets the handsup_token cookie to the request's bearer
// participant token, scoped to the room's event stream, so that a
// browser's EventSource sends it.
func (s *Server) postEventsCookie(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.roomOf(w, r)
	if !ok {
		return
	}
	p := principalOf(r)
	err := s.allow(p, rm, actEvents, "")
	if err == nil && p.kind != participant {
		err = fmt.Errorf("%w: the cookie holds a participant token: send one as Authorization: Bearer", errForbidden)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	token, _ := bearerToken(r)
	http.SetCookie(w, &http.Cookie{
		Name: tokenCookie, Value: token, Path: "/v1/rooms/" + rm.ID() + "/events",
		MaxAge:   max(1, int(p.claims.ExpiresAt.Sub(s.now())/time.Second)),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	w.WriteHeader(http.StatusNoContent)
}

// withPrincipal is r carrying p for the handler.
func withPrincipal(r *http.Request, p principal) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
}
