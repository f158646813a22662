package webrtc

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pion/stun/v4"
)

// ErrBadICEServer wraps every reason an ICE server configuration is
// refused: a URL that is not stun:, stuns:, turn: or turns:, or a TURN
// URL without a shared secret.
var ErrBadICEServer = errors.New("webrtc: bad ICE server")

// DefaultTURNTTL is how long TURN credentials stay valid when
// ICEServers.TURNTTL is zero.
const DefaultTURNTTL = 24 * time.Hour

// ICEServer is one STUN or TURN server handed to a client, as the Link
// header of a WHIP or WHEP answer carries it (RFC 9725 §4.6).
type ICEServer struct {
	URL string // stun:host:port, or turn:host:port?transport=udp and the like
	// Username and Credential are a TURN server's credentials, of the
	// "password" type; empty for STUN.
	Username, Credential string
}

// Link is the server as a Link header value: `<stun:host:port>;
// rel="ice-server"`, with username, credential and credential-type
// "password" for TURN.
func (s ICEServer) Link() string {
	if s.Username == "" && s.Credential == "" {
		return "<" + s.URL + `>; rel="ice-server"`
	}
	return "<" + s.URL + `>; rel="ice-server"; username=` + strconv.Quote(s.Username) +
		"; credential=" + strconv.Quote(s.Credential) + `; credential-type="password"`
}

// TURNCredentials are ephemeral TURN credentials for participant id in
// coturn's use-auth-secret scheme (the TURN REST API): the username is
// "<Unix expiry>:<id>", expiring ttl after now, and the credential is
// base64(HMAC-SHA1(secret, username)). A TURN server configured with the
// same static-auth-secret accepts them until the expiry, without knowing
// the participant.
func TURNCredentials(secret []byte, id string, ttl time.Duration, now time.Time) (username, credential string) {
	username = strconv.FormatInt(now.Add(ttl).Unix(), 10) + ":" + id
	m := hmac.New(sha1.New, secret)
	m.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ICEServers is the STUN and TURN servers a server hands its WebRTC
// clients. The zero value hands out none.
type ICEServers struct {
	// URLs are stun:, stuns:, turn: and turns: URLs (RFC 7064, RFC 7065),
	// for example "stun:stun.example.net:3478" or
	// "turn:turn.example.net:3478?transport=udp"; default none.
	URLs []string
	// TURNSecret is the TURN server's shared secret (coturn's
	// static-auth-secret), required with a TURN URL. Keep it out of
	// command lines and logs.
	TURNSecret []byte
	// TURNTTL is how long the credentials of an answer stay valid;
	// default DefaultTURNTTL (24 h).
	TURNTTL time.Duration
}

// Validate checks every URL, and that TURN has a secret. Errors wrap
// ErrBadICEServer.
func (c ICEServers) Validate() error {
	for _, u := range c.URLs {
		turn, err := isTURN(u)
		if err != nil {
			return err
		}
		if turn && len(c.TURNSecret) == 0 {
			return fmt.Errorf("%w: TURN URL %q needs a shared secret", ErrBadICEServer, u)
		}
	}
	return nil
}

// For is the servers for participant id at now, each TURN server with
// fresh credentials. URLs that do not parse are left out (Validate
// reports them).
func (c ICEServers) For(id string, now time.Time) []ICEServer {
	if len(c.URLs) == 0 {
		return nil
	}
	ttl := c.TURNTTL
	if ttl <= 0 {
		ttl = DefaultTURNTTL
	}
	out := make([]ICEServer, 0, len(c.URLs))
	for _, u := range c.URLs {
		turn, err := isTURN(u)
		if err != nil {
			continue
		}
		s := ICEServer{URL: u}
		if turn {
			s.Username, s.Credential = TURNCredentials(c.TURNSecret, id, ttl, now)
		}
		out = append(out, s)
	}
	return out
}

// isTURN parses u and reports whether it is a TURN URL.
func isTURN(u string) (bool, error) {
	if strings.ContainsAny(u, "<>\" \r\n") {
		return false, fmt.Errorf("%w: %q", ErrBadICEServer, u)
	}
	parsed, err := stun.ParseURI(u)
	if err != nil {
		return false, fmt.Errorf("%w: %q: %w", ErrBadICEServer, u, err)
	}
	return parsed.Scheme == stun.SchemeTypeTURN || parsed.Scheme == stun.SchemeTypeTURNS, nil
}
