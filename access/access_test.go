package access_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/access"
)

var (
	key = []byte("0123456789abcdef0123456789abcdef") // 32 bytes
	t0  = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
)

func authority(t *testing.T, cfg access.Config) *access.Authority {
	t.Helper()
	if cfg.Key == nil {
		cfg.Key = key
	}
	a, err := access.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// mint signs claims as an app backend would with nothing but HMAC-SHA256:
// the offline recipe, independent of the package and its JWT library.
func mint(k []byte, header string, claims map[string]any) string {
	enc := base64.RawURLEncoding
	body, _ := json.Marshal(claims)
	signing := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString(body)
	m := hmac.New(sha256.New, k)
	m.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(m.Sum(nil))
}

const hs256 = `{"alg":"HS256","typ":"JWT"}`

func recipe(now time.Time) map[string]any {
	return map[string]any{
		"iss": "handsup", "sub": "lena", "room": "demo", "grants": []string{"listen", "speak"},
		"jti": "tok-1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

func TestIssueVerify(t *testing.T) {
	a := authority(t, access.Config{})
	tok, c, err := a.Issue(access.Claims{Room: "demo", Identity: "lena", Grants: []access.Grant{access.Listen}}, t0, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == "" || !c.ExpiresAt.Equal(t0.Add(time.Hour)) || !c.IssuedAt.Equal(t0) {
		t.Fatalf("issued claims %+v", c)
	}
	got, err := a.Verify(tok, t0.Add(59*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if got.Room != "demo" || got.Identity != "lena" || got.ID != c.ID || !got.Has(access.Listen) || got.Has(access.Speak) {
		t.Fatalf("verified claims %+v", got)
	}
	if _, err := a.Verify(tok, t0.Add(time.Hour+31*time.Second)); !errors.Is(err, access.ErrExpired) {
		t.Fatalf("an hour and 31 s later: %v, want ErrExpired", err)
	}
	_, _, err = a.Issue(access.Claims{Room: "demo", Identity: "lena", Grants: []access.Grant{access.Listen}}, t0, 25*time.Hour)
	if !errors.Is(err, access.ErrInvalid) {
		t.Fatalf("issuing for 25 h: %v", err)
	}
}

// A token minted offline with the shared key, by the README's recipe, is
// accepted.
func TestOfflineRecipe(t *testing.T) {
	a := authority(t, access.Config{})
	c, err := a.Verify(mint(key, hs256, recipe(t0)), t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if c.Identity != "lena" || c.Room != "demo" || !c.Has(access.Speak) || c.ID != "tok-1" {
		t.Fatalf("claims %+v", c)
	}
}

func TestRefused(t *testing.T) {
	a := authority(t, access.Config{})
	with := func(k string, v any) map[string]any {
		c := recipe(t0)
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	other := []byte("another key, 32 bytes long......")
	for _, c := range []struct {
		name  string
		token string
		want  error
	}{
		{"another key", mint(other, hs256, recipe(t0)), access.ErrInvalid},
		{"alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
			strings.Split(mint(key, hs256, recipe(t0)), ".")[1] + ".", access.ErrInvalid},
		{"HS512 header", mint(key, `{"alg":"HS512","typ":"JWT"}`, recipe(t0)), access.ErrInvalid},
		{"another issuer", mint(key, hs256, with("iss", "someone")), access.ErrInvalid},
		{"no exp", mint(key, hs256, with("exp", nil)), access.ErrInvalid},
		{"no iat", mint(key, hs256, with("iat", nil)), access.ErrInvalid},
		{"issued in the future", mint(key, hs256, with("iat", t0.Add(time.Hour).Unix())), access.ErrInvalid},
		{"lives 48 h", mint(key, hs256, with("exp", t0.Add(48*time.Hour).Unix())), access.ErrInvalid},
		{"no room", mint(key, hs256, with("room", nil)), access.ErrInvalid},
		{"no sub", mint(key, hs256, with("sub", nil)), access.ErrInvalid},
		{"no jti", mint(key, hs256, with("jti", nil)), access.ErrInvalid},
		{"no grants", mint(key, hs256, with("grants", []string{})), access.ErrInvalid},
		{"unknown grant", mint(key, hs256, with("grants", []string{"admin"})), access.ErrInvalid},
		{"grants not a list", mint(key, hs256, with("grants", "speak")), access.ErrInvalid},
		{"expired", mint(key, hs256, with("exp", t0.Add(-time.Hour).Unix())), access.ErrExpired},
		{"garbage", "not.a.token", access.ErrInvalid},
		{"empty", "", access.ErrInvalid},
		{"oversized", strings.Repeat("a", 5000), access.ErrInvalid},
	} {
		if _, err := a.Verify(c.token, t0); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

func TestWeakKey(t *testing.T) {
	if _, err := access.New(access.Config{Key: []byte("short")}); !errors.Is(err, access.ErrWeakKey) {
		t.Fatalf("5-byte key: %v", err)
	}
}

func TestRevoke(t *testing.T) {
	a := authority(t, access.Config{MaxEntries: 2})
	issue := func() (string, access.Claims) {
		tok, c, err := a.Issue(access.Claims{Room: "demo", Identity: "lena", Grants: []access.Grant{access.Listen}}, t0, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return tok, c
	}
	tok, c := issue()
	if err := a.Revoke(c.ID, c.ExpiresAt, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(tok, t0); !errors.Is(err, access.ErrRevoked) {
		t.Fatalf("revoked token: %v", err)
	}
	other, c2 := issue()
	if _, err := a.Verify(other, t0); err != nil {
		t.Fatalf("another token of the same identity: %v", err)
	}
	// The list is bounded: full of live entries it refuses, and it forgets
	// those whose tokens have expired anyway.
	_ = a.Revoke(c2.ID, c2.ExpiresAt, t0)
	if err := a.Revoke("third", t0.Add(time.Minute), t0); !errors.Is(err, access.ErrFull) {
		t.Fatalf("third live revocation in a list of 2: %v", err)
	}
	if err := a.Revoke("third", t0.Add(3*time.Minute), t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("after the first two expired: %v", err)
	}
}

func TestBan(t *testing.T) {
	a := authority(t, access.Config{})
	if err := a.Ban("demo", "lena", t0.Add(10*time.Minute), t0); err != nil {
		t.Fatal(err)
	}
	if until, ok := a.Banned("demo", "lena", t0.Add(time.Minute)); !ok || !until.Equal(t0.Add(10*time.Minute)) {
		t.Fatalf("banned = %v until %v", ok, until)
	}
	if _, ok := a.Banned("other-room", "lena", t0); ok {
		t.Fatal("a ban from one room kept lena out of another")
	}
	if _, ok := a.Banned("demo", "lena", t0.Add(10*time.Minute)); ok {
		t.Fatal("the ban outlived its end")
	}
}

// A use-limited token joins MaxUses times; the claims of instance and uses
// survive signing; a failed join gives its use back; the count is bounded.
func TestUses(t *testing.T) {
	a := authority(t, access.Config{MaxEntries: 1})
	tok, _, err := a.Issue(access.Claims{Room: "demo", Identity: "lena", Grants: []access.Grant{access.Listen},
		Instance: "i1", MaxUses: 2}, t0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := a.Verify(tok, t0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Instance != "i1" || c.MaxUses != 2 {
		t.Fatalf("claims %+v lost instance or uses", c)
	}
	for i := range 2 {
		if err := a.Use(c, t0); err != nil {
			t.Fatalf("use %d of 2: %v", i+1, err)
		}
	}
	if err := a.Use(c, t0); !errors.Is(err, access.ErrUsedUp) {
		t.Fatalf("third use of 2: %v, want ErrUsedUp", err)
	}
	a.Unuse(c) // the second join failed
	if err := a.Use(c, t0); err != nil {
		t.Fatalf("a use given back: %v", err)
	}
	other, _, _ := a.Issue(access.Claims{Room: "demo", Identity: "max", Grants: []access.Grant{access.Listen}, MaxUses: 1}, t0, time.Minute)
	oc, _ := a.Verify(other, t0)
	if err := a.Use(oc, t0); !errors.Is(err, access.ErrFull) {
		t.Fatalf("a second counted token in a list of 1: %v, want ErrFull", err)
	}
	if err := a.Use(oc, t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("after the first expired: %v", err)
	}
	unlimited, _, _ := a.Issue(access.Claims{Room: "demo", Identity: "ona", Grants: []access.Grant{access.Listen}}, t0, time.Minute)
	uc, _ := a.Verify(unlimited, t0)
	for range 5 {
		if err := a.Use(uc, t0); err != nil {
			t.Fatalf("a token without uses: %v", err)
		}
	}
}

// FuzzVerify: whatever string comes as a bearer token, Verify refuses it
// with one of its errors, or returns claims that hold what every token
// must (a room, an identity, an id, known grants, a bounded lifetime).
// Tokens it issued verify to the claims it issued.
func FuzzVerify(f *testing.F) {
	a, err := access.New(access.Config{Key: key})
	if err != nil {
		f.Fatal(err)
	}
	good, _, _ := a.Issue(access.Claims{Room: "demo", Identity: "lena", Grants: []access.Grant{access.Listen},
		Instance: "abc", MaxUses: 1}, t0, time.Hour)
	f.Add(good, "demo", "lena", "abc", 1)
	f.Add(mint(key, hs256, recipe(t0)), "r", "i", "", 0)
	f.Add(mint(key, `{"alg":"none"}`, recipe(t0)), "r", "i", "", 0)
	f.Add(good[:len(good)-2]+"xx", "r", "i", "", 0)
	f.Add("a.b.c", "", "", "", -1)
	f.Add("", "r", strings.Repeat("\x1c", 3000), "", 1) // a token too long to verify is not issued
	f.Fuzz(func(t *testing.T, token, room, identity, instance string, uses int) {
		c, err := a.Verify(token, t0)
		if err == nil {
			if c.Room == "" || c.Identity == "" || c.ID == "" || len(c.Grants) == 0 || c.MaxUses < 0 ||
				c.ExpiresAt.Sub(c.IssuedAt) > 24*time.Hour {
				t.Fatalf("verified claims break the rules: %+v", c)
			}
		} else if !errors.Is(err, access.ErrInvalid) && !errors.Is(err, access.ErrExpired) && !errors.Is(err, access.ErrRevoked) {
			t.Fatalf("undocumented error %v", err)
		}
		in := access.Claims{Room: room, Identity: identity, Grants: []access.Grant{access.Speak}, Instance: instance, MaxUses: uses}
		tok, issued, err := a.Issue(in, t0, time.Minute)
		if err != nil {
			return
		}
		out, err := a.Verify(tok, t0)
		if err != nil || out.Room != issued.Room || out.Identity != issued.Identity || out.Instance != issued.Instance ||
			out.MaxUses != issued.MaxUses || out.ID != issued.ID {
			t.Fatalf("issued %+v, verified %+v (%v)", issued, out, err)
		}
	})
}
