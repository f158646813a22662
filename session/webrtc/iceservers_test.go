package webrtc

import (
	"errors"
	"testing"
	"time"
)

// TestTURNCredentials checks coturn's use-auth-secret scheme against
// vectors computed outside Go:
//
//	echo -n 1700086400:bob | openssl dgst -sha1 -hmac north -binary | base64
func TestTURNCredentials(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		id                   string
		ttl                  time.Duration
		username, credential string
	}{
		{"bob", 24 * time.Hour, "1700086400:bob", "mFK3TSYItFoadZuSBcL1B0+kjkI="},
		{"alice", time.Hour, "1700003600:alice", "wjwSXO2ch1B6VaLTLMy2Avn5O9o="},
	} {
		u, c := TURNCredentials([]byte("north"), tc.id, tc.ttl, now)
		if u != tc.username || c != tc.credential {
			t.Errorf("%s: %q %q, want %q %q", tc.id, u, c, tc.username, tc.credential)
		}
	}
}

func TestICEServers(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := ICEServers{
		URLs:       []string{"stun:stun.example.net:3478", "turn:turn.example.net:3478?transport=udp"},
		TURNSecret: []byte("north"),
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	got := c.For("bob", now) // the default TTL: 24 h
	want := []string{
		`<stun:stun.example.net:3478>; rel="ice-server"`,
		`<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="1700086400:bob"; credential="mFK3TSYItFoadZuSBcL1B0+kjkI="; credential-type="password"`,
	}
	if len(got) != len(want) {
		t.Fatalf("%d servers: %+v", len(got), got)
	}
	for i := range want {
		if l := got[i].Link(); l != want[i] {
			t.Errorf("Link\n got %s\nwant %s", l, want[i])
		}
	}
	c.TURNTTL = time.Hour
	if s := c.For("alice", now)[1]; s.Username != "1700003600:alice" {
		t.Errorf("TTL 1 h: username %q", s.Username)
	}
	if (ICEServers{}).For("bob", now) != nil {
		t.Error("the zero value hands out servers")
	}

	for _, bad := range []ICEServers{
		{URLs: []string{"http://example.net"}},
		{URLs: []string{"stun:"}},
		{URLs: []string{"stun:a.example>; rel=evil"}},
		{URLs: []string{"turn:turn.example.net:3478"}}, // no secret
	} {
		if err := bad.Validate(); !errors.Is(err, ErrBadICEServer) {
			t.Errorf("%v: %v, want ErrBadICEServer", bad.URLs, err)
		}
	}
}
