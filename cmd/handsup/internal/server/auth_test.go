package server

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/access"
	"github.com/handsup-audio/handsup/internal/fakeclock"
)

// authTest is a server on a hand-driven clock, a room "r" with alice
// (speaker), bob (listener) and mod (moderator) joined by the admin over
// UDP, and participant tokens for them and others.
type authTest struct {
	*testServer
	clock *fakeclock.Clock
	tok   map[string]tokenView // by name
}

func newAuthTest(t *testing.T) *authTest {
	t.Helper()
	clock := fakeclock.New(time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC))
	ts := startServer(t, adminTok, func(c *Config) { c.Now = clock.Now })
	a := &authTest{testServer: ts, clock: clock, tok: map[string]tokenView{}}
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	ts.mustCall("POST", "/v1/rooms", `{"id":"s"}`, 201, nil)
	for _, j := range []struct{ id, role string }{{"alice", "speaker"}, {"bob", "listener"}, {"mod", "moderator"}} {
		a.joinUDP("", j.id, j.role, 201)
	}
	for name, spec := range map[string]struct{ room, grants string }{
		"alice": {"r", `"listen","speak"`},
		"bob":   {"r", `"listen"`},
		"mod":   {"r", `"listen","speak","moderate"`},
		"carol": {"r", `"listen"`},
		"dan":   {"r", `"listen","speak"`},
		"eve":   {"s", `"listen","speak","moderate"`},
	} {
		var v tokenView
		ts.mustCall("POST", "/v1/rooms/"+spec.room+"/tokens",
			fmt.Sprintf(`{"identity":%q,"grants":[%s]}`, name, spec.grants), 201, &v)
		a.tok[name] = v
	}
	return a
}

// joinUDP joins id over plain RTP in room r with bearer ("" is the
// admin), expecting want.
func (a *authTest) joinUDP(bearer, id, role string, want int) {
	a.t.Helper()
	c := newUDPClient(a.t, net.UDPAddrFromAddrPort(a.s.RTPAddr()))
	if bearer == "" {
		bearer = adminTok
	}
	body := fmt.Sprintf(`{"id":%q,"role":%q,"rtp":{"addr":%q}}`, id, role, c.addr())
	if got, answer := a.do("POST", "/v1/rooms/r/participants", "application/json", bearer, body); got != want {
		a.t.Fatalf("join %q as %s: %d %s, want %d", id, role, got, answer, want)
	}
}

// bearer is the token of name, or name itself for "admin", "" (none) or
// a literal credential.
func (a *authTest) bearer(name string) string {
	if name == "admin" {
		return adminTok
	}
	if v, ok := a.tok[name]; ok {
		return v.Token
	}
	return name
}

type authCase struct {
	name, method, path, ctype, who, body string
	want                                 int
}

func (a *authTest) run(cases []authCase) {
	a.t.Helper()
	for _, tc := range cases {
		ctype := tc.ctype
		if ctype == "" && tc.body != "" {
			ctype = "application/json"
		}
		got, body := a.do(tc.method, tc.path, ctype, a.bearer(tc.who), tc.body)
		if got != tc.want {
			a.t.Errorf("%s: %d %s, want %d", tc.name, got, strings.TrimSpace(body), tc.want)
		}
	}
}

// TestPermissions: each permission of a participant token, allowed and
// refused, over the real API: self-service on one's own id only,
// moderators on others, nothing across rooms, the admin everything.
func TestPermissions(t *testing.T) {
	a := newAuthTest(t)
	p := "/v1/rooms/r/participants/"
	a.run([]authCase{
		{"view self", "GET", p + "bob", "", "bob", "", 200},
		{"view another", "GET", p + "alice", "", "bob", "", 403},
		{"moderator views another", "GET", p + "alice", "", "mod", "", 200},
		{"another room's token", "GET", p + "bob", "", "eve", "", 403},
		{"no credential", "GET", p + "bob", "", "", "", 401},
		{"garbage credential", "GET", p + "bob", "", "garbage", "", 401},
		{"raise own hand", "POST", p + "bob/hand", "", "bob", "", 200},
		{"raise another's hand", "POST", p + "alice/hand", "", "bob", "", 403},
		{"moderator raises another's hand", "POST", p + "alice/hand", "", "mod", "", 403},
		{"hand queue, listener", "GET", "/v1/rooms/r/hands", "", "bob", "", 403},
		{"hand queue, moderator", "GET", "/v1/rooms/r/hands", "", "mod", "", 200},
		{"hand queue, admin", "GET", "/v1/rooms/r/hands", "", "admin", "", 200},
		{"lower another's hand", "DELETE", p + "bob/hand", "", "alice", "", 403},
		{"moderator lowers another's hand", "DELETE", p + "bob/hand", "", "mod", "", 200},
		{"raise it again", "POST", p + "bob/hand", "", "bob", "", 200},
		{"lower own hand", "DELETE", p + "bob/hand", "", "bob", "", 200},
		{"mute self", "PATCH", p + "alice", "", "alice", `{"muted":true}`, 200},
		{"unmute self", "PATCH", p + "alice", "", "alice", `{"muted":false}`, 200},
		{"mute another", "PATCH", p + "alice", "", "bob", `{"muted":true}`, 403},
		{"promote self", "PATCH", p + "bob", "", "bob", `{"role":"speaker"}`, 403},
		{"moderator promotes self", "PATCH", p + "mod", "", "mod", `{"role":"speaker"}`, 403},
		{"own gain", "PATCH", p + "alice", "", "alice", `{"gain_db":3}`, 403},
		{"moderator sets gain", "PATCH", p + "alice", "", "mod", `{"gain_db":3}`, 403},
		{"mute and promote self", "PATCH", p + "bob", "", "bob", `{"muted":true,"role":"speaker"}`, 403},
		{"demote another", "PATCH", p + "alice", "", "bob", `{"role":"listener"}`, 403},
		{"step down from the stage", "PATCH", p + "alice", "", "alice", `{"role":"listener"}`, 200},
		{"moderator promotes", "PATCH", p + "alice", "", "mod", `{"role":"speaker"}`, 200},
		{"moderator mutes", "PATCH", p + "alice", "", "mod", `{"muted":true}`, 200},
		{"moderator demotes", "PATCH", p + "alice", "", "mod", `{"role":"listener","muted":false}`, 200},
		{"other room's moderator", "PATCH", p + "alice", "", "eve", `{"muted":true}`, 403},
		{"renegotiate another", "PATCH", p + "alice", sdpType, "mod", "v=0", 403},
		{"renegotiate self, not on WebRTC", "PATCH", p + "alice", sdpType, "alice", "v=0", 409},
		{"room, listener", "GET", "/v1/rooms/r", "", "bob", "", 403},
		{"room, moderator", "GET", "/v1/rooms/r", "", "mod", "", 200},
		{"rooms, moderator", "GET", "/v1/rooms", "", "mod", "", 403},
		{"create a room, moderator", "POST", "/v1/rooms", "", "mod", `{"id":"x"}`, 403},
		{"close the room, moderator", "DELETE", "/v1/rooms/r", "", "mod", "", 403},
		{"mint a token, moderator", "POST", "/v1/rooms/r/tokens", "", "mod", `{"identity":"z","grants":["listen"]}`, 403},
		{"invite, moderator", "POST", "/v1/rooms/r/invites", "", "mod", `{"id":"z","role":"listener"}`, 403},
		{"revoke, moderator", "DELETE", "/v1/tokens/" + a.tok["bob"].ID, "", "mod", "", 403},
		{"kick, speaker", "DELETE", p + "bob", "", "alice", "", 403},
		{"the admin mutes", "PATCH", p + "bob", "", "admin", `{"muted":true,"gain_db":-3}`, 200},
	})
	var v participantView
	a.mustCall("GET", "/v1/rooms/r/participants/alice", "", 200, &v)
	if v.Role != "listener" || v.Muted || v.GainDB != 0 {
		t.Errorf("alice after the refusals and changes: %+v", v)
	}
}

// TestTokenJoins: a token joins as its own identity (the default id),
// in a role its grants allow, over plain RTP, WHIP and WHEP.
func TestTokenJoins(t *testing.T) {
	a := newAuthTest(t)
	a.joinUDP(a.bearer("carol"), "carol", "speaker", 403)
	a.joinUDP(a.bearer("carol"), "someone", "listener", 403)
	a.joinUDP(a.bearer("carol"), "carol", "moderator", 403)
	a.joinUDP(a.bearer("eve"), "eve", "listener", 403)
	a.joinUDP(a.bearer("carol"), "", "listener", 201) // id from the token
	a.joinUDP(a.bearer("dan"), "dan", "speaker", 201)
	a.mustCall("GET", "/v1/rooms/r/participants/carol", "", 200, nil)
	// WHIP and WHEP check the token before the offer: a garbage offer
	// that gets 400 passed the check.
	a.run([]authCase{
		{"WHEP, another's id", "POST", "/v1/rooms/r/whep?id=alice", sdpType, "carol", "v=0", 403},
		{"WHEP, own id from the token", "POST", "/v1/rooms/r/whep", sdpType, "bob", "v=0", 400},
		{"WHIP as a speaker without speak", "POST", "/v1/rooms/r/whip", sdpType, "bob", "v=0", 403},
		{"WHIP as a listener", "POST", "/v1/rooms/r/whip?role=listener", sdpType, "bob", "v=0", 400},
		{"WHIP with speak", "POST", "/v1/rooms/r/whip", sdpType, "alice", "v=0", 400},
		{"WHEP, another room's token", "POST", "/v1/rooms/r/whep", sdpType, "eve", "v=0", 403},
	})
}

// TestTokenLifetime: an expired token and a revoked token are refused
// (401, invalid_token); other tokens keep working.
func TestTokenLifetime(t *testing.T) {
	a := newAuthTest(t)
	var short tokenView
	a.mustCall("POST", "/v1/rooms/r/tokens", `{"identity":"bob","grants":["listen"],"ttl_seconds":60}`, 201, &short)
	if short.Room != "r" || short.Identity != "bob" || short.ID == "" || short.ExpiresAt != "2026-12-02T12:01:00Z" {
		t.Errorf("token answer: %+v", short)
	}
	a.tok["short"] = short
	view := authCase{"view", "GET", "/v1/rooms/r/participants/bob", "", "short", "", 200}
	a.run([]authCase{view})
	a.clock.Advance(60*time.Second + 31*time.Second) // past exp and the leeway
	view.want = 401
	a.run([]authCase{view})
	resp, _ := a.send("GET", view.path, "", short.Token, "")
	if h := resp.Header.Get("WWW-Authenticate"); !strings.Contains(h, `error="invalid_token"`) {
		t.Errorf("expired: WWW-Authenticate %q", h)
	}

	a.run([]authCase{
		{"bob before revocation", "GET", "/v1/rooms/r/participants/bob", "", "bob", "", 200},
		{"revoke", "DELETE", "/v1/tokens/" + a.tok["bob"].ID, "", "admin", "", 204},
		{"bob revoked", "GET", "/v1/rooms/r/participants/bob", "", "bob", "", 401},
		{"revoked token joins", "POST", "/v1/rooms/r/whep", sdpType, "bob", "v=0", 401},
		{"alice unaffected", "GET", "/v1/rooms/r/participants/alice", "", "alice", "", 200},
	})
	resp, _ = a.send("GET", "/v1/rooms/r/participants/bob", "", "", "")
	if h := resp.Header.Get("WWW-Authenticate"); h != `Bearer realm="handsup"` {
		t.Errorf("no credential: WWW-Authenticate %q", h)
	}
}

// TestKickBansAndLeave: a moderator's DELETE kicks (reason "kicked") and
// bans the identity: its token does nothing in the room until the ban
// ends (403 saying until when), then joins again. A participant's own
// DELETE leaves (reason "left") without a ban.
func TestKickBansAndLeave(t *testing.T) {
	a := newAuthTest(t)
	rm, _ := a.s.room("r")
	events, cancel := rm.hub.subscribe()
	defer cancel()
	a.run([]authCase{{"kick bob", "DELETE", "/v1/rooms/r/participants/bob", "", "mod", "", 204}})
	got, body := a.do("POST", "/v1/rooms/r/whep", sdpType, a.bearer("bob"), "v=0")
	if got != 403 || !strings.Contains(body, "until 2026-12-02T12:10:00Z") {
		t.Errorf("kicked bob rejoins: %d %s", got, body)
	}
	a.joinUDP(a.bearer("bob"), "bob", "listener", 403)
	a.run([]authCase{{"banned bob's events", "GET", "/v1/rooms/r/events", "", "bob", "", 403}})
	a.clock.Advance(10*time.Minute - time.Second)
	a.joinUDP(a.bearer("bob"), "bob", "listener", 403)
	a.clock.Advance(time.Second)
	a.joinUDP(a.bearer("bob"), "bob", "listener", 201)

	a.run([]authCase{
		{"leave", "DELETE", "/v1/rooms/r/participants/alice", "", "alice", "", 204},
		{"admin kicks", "DELETE", "/v1/rooms/r/participants/mod", "", "admin", "", 204},
	})
	a.joinUDP(a.bearer("alice"), "alice", "speaker", 201) // who left is not banned
	a.joinUDP(a.bearer("mod"), "mod", "moderator", 403)   // whom the admin kicked is

	want := map[string]string{"bob": "kicked", "alice": "left", "mod": "kicked"}
	for timeout := time.After(20 * time.Second); len(want) > 0; {
		select {
		case e := <-events:
			if e.Type == "left" && want[e.Participant] != "" {
				if e.Reason != want[e.Participant] {
					t.Errorf("%s left with reason %q, want %q", e.Participant, e.Reason, want[e.Participant])
				}
				delete(want, e.Participant)
			}
		case <-timeout:
			t.Fatalf("no left event for %v within 20 s", want)
		}
	}
}

// TestKickBanConfig: KickBan negative is no ban.
func TestKickBanConfig(t *testing.T) {
	ts := startServer(t, adminTok, func(c *Config) { c.KickBan = -1 })
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	a := &authTest{testServer: ts, tok: map[string]tokenView{}}
	var bob tokenView
	ts.mustCall("POST", "/v1/rooms/r/tokens", `{"identity":"bob","grants":["listen"]}`, 201, &bob)
	a.joinUDP(bob.Token, "bob", "listener", 201)
	ts.mustCall("DELETE", "/v1/rooms/r/participants/bob", "", 204, nil)
	a.joinUDP(bob.Token, "bob", "listener", 201)
}

// TestHandQueue: the queue lists raised hands first raised first; a hand
// lowered and raised again goes to the back; a leaver leaves the queue.
func TestHandQueue(t *testing.T) {
	a := newAuthTest(t)
	a.joinUDP("", "carol", "listener", 201)
	queue := func() string {
		var q struct{ Hands []handView }
		got, body := a.do("GET", "/v1/rooms/r/hands", "", a.bearer("mod"), "")
		if got != 200 {
			t.Fatalf("hands: %d %s", got, body)
		}
		if err := json.Unmarshal([]byte(body), &q); err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, h := range q.Hands {
			ids = append(ids, h.ID)
		}
		return strings.Join(ids, ",")
	}
	step := func(who, method, id string, advance time.Duration) {
		a.clock.Advance(advance)
		if got, body := a.do(method, "/v1/rooms/r/participants/"+id+"/hand", "", a.bearer(who), ""); got != 200 {
			t.Fatalf("%s %s's hand: %d %s", method, id, got, body)
		}
	}
	// Ids sort carol < bob < alice the other way, so the order is the raise order's.
	step("admin", "POST", "carol", time.Second)
	step("bob", "POST", "bob", time.Second)
	step("alice", "POST", "alice", time.Second)
	if q := queue(); q != "carol,bob,alice" {
		t.Errorf("queue %q, want carol,bob,alice", q)
	}
	step("admin", "DELETE", "carol", time.Second)
	step("admin", "POST", "carol", time.Second)
	step("bob", "POST", "bob", time.Second) // raised again: keeps its place
	if q := queue(); q != "bob,alice,carol" {
		t.Errorf("queue %q, want bob,alice,carol", q)
	}
	a.mustCall("DELETE", "/v1/rooms/r/participants/alice", "", 204, nil)
	if q := queue(); q != "bob,carol" {
		t.Errorf("queue %q, want bob,carol", q)
	}
}

// TestEventsCookie: a participant token set as the handsup_token cookie
// (Path the room's event stream, HttpOnly, SameSite=Strict, Max-Age its
// remaining life) opens the event stream and nothing else; no endpoint
// takes a token from the URL.
func TestEventsCookie(t *testing.T) {
	a := newAuthTest(t)
	a.clock.Advance(10 * time.Minute)
	resp, body := a.send("POST", "/v1/rooms/r/events/cookie", "", a.bearer("bob"), "")
	if resp.StatusCode != 204 {
		t.Fatalf("cookie: %d %s", resp.StatusCode, body)
	}
	sc := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"handsup_token=" + a.tok["bob"].Token, "Path=/v1/rooms/r/events", "HttpOnly", "SameSite=Strict", "Max-Age=3000"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	if strings.Contains(sc, "Secure") {
		t.Errorf("Set-Cookie %q is Secure over plain HTTP", sc)
	}
	a.run([]authCase{
		{"cookie with the admin token", "POST", "/v1/rooms/r/events/cookie", "", "admin", "", 403},
		{"cookie without a token", "POST", "/v1/rooms/r/events/cookie", "", "", "", 401},
		{"cookie with another room's token", "POST", "/v1/rooms/r/events/cookie", "", "eve", "", 403},
	})

	stream := func(path string, cookie *http.Cookie, bearer string) int {
		req, _ := http.NewRequest("GET", a.base+path, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close() // the stream, or the error
		return resp.StatusCode
	}
	bob := &http.Cookie{Name: tokenCookie, Value: a.tok["bob"].Token}
	tok := a.tok["bob"].Token
	for _, tc := range []struct {
		name, path string
		cookie     *http.Cookie
		bearer     string
		want       int
	}{
		{"events by cookie", "/v1/rooms/r/events", bob, "", 200},
		{"events by bearer", "/v1/rooms/r/events", nil, tok, 200},
		{"events, admin", "/v1/rooms/r/events", nil, adminTok, 200},
		{"events, nothing", "/v1/rooms/r/events", nil, "", 401},
		{"events, another room's cookie", "/v1/rooms/s/events", bob, "", 403},
		{"events, forged cookie", "/v1/rooms/r/events", &http.Cookie{Name: tokenCookie, Value: tok + "x"}, "", 401},
		{"participant by cookie", "/v1/rooms/r/participants/bob", bob, "", 401},
		{"hands by cookie", "/v1/rooms/r/hands", &http.Cookie{Name: tokenCookie, Value: a.tok["mod"].Token}, "", 401},
		{"events, token in the query", "/v1/rooms/r/events?token=" + tok, nil, "", 401},
		{"events, access_token in the query", "/v1/rooms/r/events?access_token=" + tok, nil, "", 401},
		{"participant, token in the query", "/v1/rooms/r/participants/bob?token=" + tok, nil, "", 401},
	} {
		if got := stream(tc.path, tc.cookie, tc.bearer); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	a.run([]authCase{{"WHEP, token in the query", "POST", "/v1/rooms/r/whep?token=" + tok, sdpType, "", "v=0", 401}})
}

// TestREADMETokenRecipe runs the README's offline recipe (openssl) with a
// key the server shares, and joins with the token it prints: the recipe
// works as documented.
func TestREADMETokenRecipe(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	readme, err := os.ReadFile("../../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start = "```sh\n# mint a participant token offline\n"
	i := strings.Index(string(readme), start)
	if i < 0 {
		t.Fatal("README has no offline token recipe")
	}
	script := string(readme[i+len(start):])
	script = script[:strings.Index(script, "```")]
	key := []byte("the 32-byte key the backend holds")
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Env = append(os.Environ(), "HANDSUP_TOKEN_KEY="+hex.EncodeToString(key),
		"ROOM=demo", "IDENTITY=lena", `GRANTS="listen","speak"`)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the recipe: %v\n%s", err, script)
	}
	token := strings.TrimSpace(string(out))

	ts := startServer(t, adminTok, func(c *Config) { c.TokenKey = key })
	ts.mustCall("POST", "/v1/rooms", `{"id":"demo"}`, 201, nil)
	c, err := ts.s.tokens.Verify(token, time.Now())
	if err != nil || c.Room != "demo" || c.Identity != "lena" || !c.Has(access.Speak) || c.Has(access.Moderate) ||
		c.ExpiresAt.Sub(c.IssuedAt) != time.Hour {
		t.Fatalf("the recipe's token: %+v, %v", c, err)
	}
	lena := newUDPClient(t, net.UDPAddrFromAddrPort(ts.s.RTPAddr()))
	body := fmt.Sprintf(`{"role":"speaker","rtp":{"addr":%q}}`, lena.addr())
	if got, answer := ts.do("POST", "/v1/rooms/demo/participants", "application/json", token, body); got != 201 {
		t.Fatalf("join with the recipe's token: %d %s", got, answer)
	}
}

// With -pprof, profiles, goroutine dumps and the command line are the
// admin's only.
func TestPprofNeedsTheAdminToken(t *testing.T) {
	ts := startServer(t, adminTok, func(c *Config) { c.Pprof = true })
	for _, path := range []string{"/debug/pprof/cmdline", "/debug/pprof/", "/debug/pprof/goroutine?debug=1"} {
		url := "http://" + ts.s.HTTPAddr().String() + path
		for _, c := range []struct {
			token string
			want  int
		}{{"", 401}, {"wrong-token-of-some-length", 401}, {adminTok, 200}} {
			req, err := http.NewRequest("GET", url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.token != "" {
				req.Header.Set("Authorization", "Bearer "+c.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("GET %s with %q: %d, want %d", path, c.token, resp.StatusCode, c.want)
			}
		}
	}
}

// An idle keep-alive connection is closed after Config.HTTPIdleTimeout:
// idle clients cannot hold the server's descriptors.
func TestIdleConnectionsClosed(t *testing.T) {
	ts := startServer(t, adminTok, func(c *Config) { c.HTTPIdleTimeout = 100 * time.Millisecond })
	conn, err := net.Dial("tcp", ts.s.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // bounds a failure only
	buf := make([]byte, 4096)
	var got []byte
	for {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break // the server closed the idle connection
		}
		if err != nil {
			t.Fatalf("the idle connection stayed open: %v (read %q)", err, got)
		}
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 200") {
		t.Fatalf("answer %q", got)
	}
}

// TestJitterExtraConfig: JitterExtraDelay reaches every room's speakers'
// jitter buffers, and a value out of range is refused at start.
func TestJitterExtraConfig(t *testing.T) {
	for _, bad := range []time.Duration{-time.Millisecond, 201 * time.Millisecond} {
		if _, err := New(Config{HTTPAddr: "127.0.0.1:0", RTPAddr: "127.0.0.1:0", JitterExtraDelay: bad}); err == nil || !strings.Contains(err.Error(), "jitter extra delay") {
			t.Errorf("JitterExtraDelay %v: err %v, want refused", bad, err)
		}
	}
	ts := startServer(t, adminTok, func(c *Config) { c.JitterExtraDelay = 8 * time.Millisecond })
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	r, err := ts.s.room("r")
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Config().Jitter.ExtraDelay; got != 8*time.Millisecond {
		t.Errorf("the room's jitter ExtraDelay is %v, want 8ms", got)
	}
}
