package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// An invite lets one participant id join one room in one role until it
// expires: HMAC-SHA256 over those four, signed with the server's secret.
// It travels as base64url(claims JSON) "." base64url(MAC).
type invite struct {
	Room    string `json:"room"`
	ID      string `json:"id"`
	Role    string `json:"role"`
	Expires int64  `json:"exp"` // Unix seconds
}

var (
	errInviteMalformed = errors.New("invite is malformed")
	errInviteSignature = errors.New("invite signature does not match")
	errInviteExpired   = errors.New("invite has expired")
	errInviteMismatch  = errors.New("invite is for another room, participant or role")
)

type inviteSigner struct{ secret []byte }

func (s inviteSigner) sign(inv invite) string {
	claims, _ := json.Marshal(inv) // a struct of strings and an int always marshals
	enc := base64.RawURLEncoding
	return enc.EncodeToString(claims) + "." + enc.EncodeToString(s.mac(claims))
}

func (s inviteSigner) mac(claims []byte) []byte {
	m := hmac.New(sha256.New, s.secret)
	m.Write(claims)
	return m.Sum(nil)
}

// verify checks token for joining room as id with role at now.
func (s inviteSigner) verify(token, room, id, role string, now time.Time) error {
	inv, err := s.open(token, now)
	if err != nil {
		return err
	}
	if inv.Room != room || inv.ID != id || inv.Role != role {
		return errInviteMismatch
	}
	return nil
}

// verifyHolder checks token as the credential of participant id of room
// on its own WHIP/WHEP resource, whatever role the invite was for (the
// participant may have been promoted since).
func (s inviteSigner) verifyHolder(token, room, id string, now time.Time) error {
	inv, err := s.open(token, now)
	if err != nil {
		return err
	}
	if inv.Room != room || inv.ID != id {
		return errInviteMismatch
	}
	return nil
}

// open checks token's form, signature and expiry at now.
func (s inviteSigner) open(token string, now time.Time) (invite, error) {
	claimsB64, macB64, ok := strings.Cut(token, ".")
	if !ok || len(token) > 2048 {
		return invite{}, errInviteMalformed
	}
	enc := base64.RawURLEncoding
	claims, err1 := enc.DecodeString(claimsB64)
	mac, err2 := enc.DecodeString(macB64)
	if err1 != nil || err2 != nil {
		return invite{}, errInviteMalformed
	}
	if !hmac.Equal(mac, s.mac(claims)) {
		return invite{}, errInviteSignature
	}
	var inv invite
	if err := json.Unmarshal(claims, &inv); err != nil {
		return invite{}, errInviteMalformed
	}
	if now.Unix() >= inv.Expires {
		return invite{}, errInviteExpired
	}
	return inv, nil
}
