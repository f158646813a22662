package access

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Grant is something a token lets its holder do in its room.
type Grant string

// The grants a token may carry.
const (
	Listen   Grant = "listen"   // join the audience and hear the room
	Speak    Grant = "speak"    // join on stage, or be promoted to it
	Moderate Grant = "moderate" // promote, demote, mute others, kick; see the hand queue
)

func (g Grant) valid() bool { return g == Listen || g == Speak || g == Moderate }

// Errors Verify and Issue return; the HTTP layer maps them to statuses.
var (
	// ErrInvalid wraps every reason a token is not one of ours: it does
	// not parse, its signature or algorithm is wrong, a claim is missing
	// or malformed, or it is too large.
	ErrInvalid = errors.New("access: invalid token")
	ErrExpired = errors.New("access: token expired")
	ErrRevoked = errors.New("access: token revoked")
	// ErrBanned: the identity was kicked from the room and may not come
	// back until the ban ends.
	ErrBanned = errors.New("access: banned from the room")
	// ErrWeakKey: the signing key is shorter than MinKeyBytes.
	ErrWeakKey = errors.New("access: key too short")
	// ErrFull: the revocation, ban or use list is at its bound.
	ErrFull = errors.New("access: list full")
	// ErrUsedUp: the token has been used its MaxUses times.
	ErrUsedUp = errors.New("access: token used up")
)

// MinKeyBytes is the shortest key New accepts: HMAC-SHA256's own size.
const MinKeyBytes = 32

// maxTokenBytes bounds what Verify parses.
const maxTokenBytes = 4096

// Claims are what a token says.
type Claims struct {
	Room      string    // the one room it opens
	Identity  string    // the participant id it names ("sub")
	Grants    []Grant   // what the holder may do there
	ID        string    // unique id, for revocation ("jti")
	IssuedAt  time.Time // "iat"
	ExpiresAt time.Time // "exp"
	// Instance binds the token to one instance of its room ("rin"): a
	// room deleted and created again with the same id has another, and
	// the caller refuses the token there. Empty: any instance (a token
	// minted before the room exists, or offline).
	Instance string
	// MaxUses is how many times the token may be used (Use: a join);
	// 0, no limit ("uses").
	MaxUses int
}

// Has reports whether the claims carry g.
func (c Claims) Has(g Grant) bool { return slices.Contains(c.Grants, g) }

// jwtClaims is the token's JSON: the registered claims and ours.
type jwtClaims struct {
	jwt.RegisteredClaims
	Room     string  `json:"room"`
	Grants   []Grant `json:"grants"`
	Instance string  `json:"rin,omitempty"`
	MaxUses  int     `json:"uses,omitempty"`
}

// Config holds an Authority's settings. Key is required; every other zero
// field takes the default written beside it.
type Config struct {
	Key    []byte        // the HMAC-SHA256 key shared with the app's backend; at least MinKeyBytes
	Issuer string        // the "iss" written and required; default "handsup"
	MaxTTL time.Duration // the longest lifetime Issue grants and Verify accepts; default 24 h
	Leeway time.Duration // clock skew allowed on "exp" and "iat"; default 30 s
	// MaxEntries bounds the revocation list and the ban list, each;
	// default 100,000.
	MaxEntries int
}

func (c Config) withDefaults() Config {
	if c.Issuer == "" {
		c.Issuer = "handsup"
	}
	if c.MaxTTL <= 0 {
		c.MaxTTL = 24 * time.Hour
	}
	if c.Leeway <= 0 {
		c.Leeway = 30 * time.Second
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = 100_000
	}
	return c
}

// Authority issues and verifies tokens and keeps the revocation and ban
// lists. Its methods are safe for concurrent use.
type Authority struct {
	cfg Config

	mu      sync.Mutex
	revoked map[string]time.Time // token id → when it expires anyway
	bans    map[ban]time.Time    // → when the ban ends
	uses    map[string]*uses     // token id → its uses so far
}

// uses counts a use-limited token's uses until it expires.
type uses struct {
	n       int
	expires time.Time
}

type ban struct{ room, identity string }

// New makes an Authority; a key shorter than MinKeyBytes is ErrWeakKey.
func New(cfg Config) (*Authority, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Key) < MinKeyBytes {
		return nil, fmt.Errorf("%w: %d bytes, want at least %d", ErrWeakKey, len(cfg.Key), MinKeyBytes)
	}
	return &Authority{
		cfg:     cfg,
		revoked: map[string]time.Time{},
		bans:    map[ban]time.Time{},
		uses:    map[string]*uses{},
	}, nil
}

// Issue signs a token for c.Room and c.Identity with c.Grants, valid from
// now for ttl (at most Config.MaxTTL). It fills in c's ID (random),
// IssuedAt and ExpiresAt and returns them with the token.
func (a *Authority) Issue(c Claims, now time.Time, ttl time.Duration) (string, Claims, error) {
	if ttl <= 0 || ttl > a.cfg.MaxTTL {
		return "", Claims{}, fmt.Errorf("%w: lifetime %v, want (0, %v]", ErrInvalid, ttl, a.cfg.MaxTTL)
	}
	var id [16]byte
	_, _ = rand.Read(id[:]) // crypto/rand never fails on Linux
	c.ID = base64.RawURLEncoding.EncodeToString(id[:])
	c.IssuedAt = now.Truncate(time.Second)
	c.ExpiresAt = now.Add(ttl).Truncate(time.Second)
	if err := check(c); err != nil {
		return "", Claims{}, err
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: a.cfg.Issuer, Subject: c.Identity, ID: c.ID,
			IssuedAt: jwt.NewNumericDate(c.IssuedAt), ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
		},
		Room: c.Room, Grants: c.Grants, Instance: c.Instance, MaxUses: c.MaxUses,
	})
	s, err := tok.SignedString(a.cfg.Key)
	if err != nil {
		return "", Claims{}, fmt.Errorf("access: signing: %w", err)
	}
	if len(s) > maxTokenBytes { // Verify would refuse it
		return "", Claims{}, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(s), maxTokenBytes)
	}
	return s, c, nil
}

// check is what every token's claims must hold.
func check(c Claims) error {
	switch {
	case c.Room == "":
		return fmt.Errorf("%w: no room", ErrInvalid)
	case c.Identity == "":
		return fmt.Errorf("%w: no identity (sub)", ErrInvalid)
	case c.ID == "":
		return fmt.Errorf("%w: no id (jti)", ErrInvalid)
	case len(c.Grants) == 0:
		return fmt.Errorf("%w: no grants", ErrInvalid)
	case c.MaxUses < 0:
		return fmt.Errorf("%w: negative uses", ErrInvalid)
	case !utf8.ValidString(c.Room) || !utf8.ValidString(c.Identity) || !utf8.ValidString(c.Instance):
		return fmt.Errorf("%w: a claim is not UTF-8 (JSON would change it)", ErrInvalid)
	}
	for _, g := range c.Grants {
		if !g.valid() {
			return fmt.Errorf("%w: unknown grant %q", ErrInvalid, g)
		}
	}
	return nil
}

// Verify checks a token at now: its signature (HS256 only), issuer,
// claims, lifetime (expired is ErrExpired; one longer than Config.MaxTTL
// is ErrInvalid), and the revocation list (ErrRevoked). It does not check
// bans, which depend on the room the holder asks for: see Banned.
func (a *Authority) Verify(token string, now time.Time) (Claims, error) {
	if len(token) > maxTokenBytes {
		return Claims{}, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalid, len(token), maxTokenBytes)
	}
	var jc jwtClaims
	_, err := jwt.ParseWithClaims(token, &jc, func(*jwt.Token) (any, error) { return a.cfg.Key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(a.cfg.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(a.cfg.Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Claims{}, ErrExpired
	case err != nil:
		return Claims{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	c := Claims{Room: jc.Room, Identity: jc.Subject, Grants: jc.Grants, ID: jc.ID,
		Instance: jc.Instance, MaxUses: jc.MaxUses}
	if jc.IssuedAt == nil {
		return Claims{}, fmt.Errorf("%w: no iat", ErrInvalid)
	}
	c.IssuedAt, c.ExpiresAt = jc.IssuedAt.Time, jc.ExpiresAt.Time
	if err := check(c); err != nil {
		return Claims{}, err
	}
	if c.ExpiresAt.Sub(c.IssuedAt) > a.cfg.MaxTTL {
		return Claims{}, fmt.Errorf("%w: lifetime %v beyond %v", ErrInvalid, c.ExpiresAt.Sub(c.IssuedAt), a.cfg.MaxTTL)
	}
	a.mu.Lock()
	_, revoked := a.revoked[c.ID]
	a.mu.Unlock()
	if revoked {
		return Claims{}, ErrRevoked
	}
	return c, nil
}

// Revoke refuses the token with id from now on, until expires (its "exp":
// after that Verify refuses it anyway and the entry is forgotten).
func (a *Authority) Revoke(id string, expires, now time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return put(a.revoked, id, expires.Add(a.cfg.Leeway), now, a.cfg.MaxEntries)
}

// Use counts one use of a token (a join) at now: past c.MaxUses it is
// ErrUsedUp. A token with no MaxUses is not counted. The count is kept
// until the token expires, bounded by Config.MaxEntries (ErrFull).
func (a *Authority) Use(c Claims, now time.Time) error {
	if c.MaxUses <= 0 {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.uses[c.ID]
	if u == nil {
		if len(a.uses) >= a.cfg.MaxEntries {
			for id, old := range a.uses {
				if !now.Before(old.expires) {
					delete(a.uses, id)
				}
			}
			if len(a.uses) >= a.cfg.MaxEntries {
				return ErrFull
			}
		}
		u = &uses{expires: c.ExpiresAt.Add(a.cfg.Leeway)}
		a.uses[c.ID] = u
	}
	if u.n >= c.MaxUses {
		return fmt.Errorf("%w: %d of %d", ErrUsedUp, u.n, c.MaxUses)
	}
	u.n++
	return nil
}

// Unuse gives back a use that Use counted, for a join that failed.
func (a *Authority) Unuse(c Claims) {
	if c.MaxUses <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if u := a.uses[c.ID]; u != nil && u.n > 0 {
		u.n--
	}
}

// Ban keeps identity out of room until until: Banned reports it.
func (a *Authority) Ban(room, identity string, until, now time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return put(a.bans, ban{room, identity}, until, now, a.cfg.MaxEntries)
}

// Banned reports whether identity is banned from room at now, and until
// when.
func (a *Authority) Banned(room, identity string, now time.Time) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	until, ok := a.bans[ban{room, identity}]
	if !ok || !now.Before(until) {
		return time.Time{}, false
	}
	return until, true
}

// put adds k until until, first forgetting entries that have ended when
// the list is full; still full is ErrFull.
func put[K comparable](m map[K]time.Time, k K, until, now time.Time, limit int) error {
	if _, ok := m[k]; !ok && len(m) >= limit {
		for key, end := range m {
			if !now.Before(end) {
				delete(m, key)
			}
		}
		if len(m) >= limit {
			return ErrFull
		}
	}
	if cur, ok := m[k]; !ok || until.After(cur) {
		m[k] = until
	}
	return nil
}
