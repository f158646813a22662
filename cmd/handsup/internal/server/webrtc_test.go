package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/internal/webrtctest"
	"github.com/handsup-audio/handsup/session/webrtc"
)

// whip posts a client's offer to path (…/whip or …/whep with its query)
// with the bearer credential, and applies the answer.
func (ts *testServer) whip(c *webrtctest.Client, path, bearer string) (status int, location string) {
	ts.t.Helper()
	status, h := ts.whipHeader(c, path, bearer)
	return status, h.Get("Location")
}

// mustWHIP is whip without a credential, which must succeed.
func (ts *testServer) mustWHIP(c *webrtctest.Client, path string) {
	ts.t.Helper()
	if status, _ := ts.whip(c, path, ""); status != 201 {
		ts.t.Fatalf("%s: %d", path, status)
	}
}

// whipHeader is whip that returns the answer's header.
func (ts *testServer) whipHeader(c *webrtctest.Client, path, bearer string) (int, http.Header) {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	offer, err := c.Offer(ctx)
	if err != nil {
		ts.t.Fatal(err)
	}
	resp, body := ts.send("POST", path, sdpType, bearer, offer)
	if resp.StatusCode != http.StatusCreated {
		return resp.StatusCode, resp.Header
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		ts.t.Errorf("answer Content-Type %q", ct)
	}
	if err := c.Accept(body); err != nil {
		ts.t.Fatal(err)
	}
	if err := c.WaitConnected(ctx); err != nil {
		ts.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header
}

func newWebRTCClient(t *testing.T, o webrtctest.Options) *webrtctest.Client {
	t.Helper()
	c, err := webrtctest.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestWebRTCSpeakersAndListener: two WHIP speakers (440 and 660 Hz) and a
// WHEP listener, real pion clients on loopback, over UDP and over ICE-TCP
// alone. The listener, who offers RED as Chrome does, gets RED and hears
// both tones; each speaker hears the other and not itself (mix-minus).
func TestWebRTCSpeakersAndListener(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		name := map[bool]string{false: "udp", true: "tcp"}[tcp]
		t.Run(name, func(t *testing.T) {
			ts := startServer(t, adminTok)
			ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
			alice := newWebRTCClient(t, webrtctest.Options{Send: true, TCP: tcp})
			carol := newWebRTCClient(t, webrtctest.Options{Send: true, TCP: tcp})
			bob := newWebRTCClient(t, webrtctest.Options{TCP: tcp, RED: true}) // as Chrome offers
			for _, j := range []struct {
				c    *webrtctest.Client
				path string
			}{{alice, "/v1/rooms/r/whip?id=alice"}, {carol, "/v1/rooms/r/whip?id=carol"}, {bob, "/v1/rooms/r/whep?id=bob"}} {
				status, loc := ts.whip(j.c, j.path, adminTok)
				id := strings.TrimPrefix(j.path[strings.Index(j.path, "?"):], "?id=")
				if status != 201 || loc != "/v1/rooms/r/participants/"+id {
					t.Fatalf("%s: %d, Location %q", j.path, status, loc)
				}
			}
			var v participantView
			ts.mustCall("GET", "/v1/rooms/r/participants/bob", "", 200, &v)
			if v.Role != "listener" {
				t.Errorf("bob: %+v", v)
			}

			ma, mc, mb := alice.Mark(), carol.Mark(), bob.Mark()
			var wg sync.WaitGroup
			for _, sp := range []struct {
				c *webrtctest.Client
				f float64
			}{{alice, 440}, {carol, 660}} {
				wg.Go(func() {
					if err := sp.c.Talk(sp.f, 100); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			// The stream runs on after the talk; wait for its tail (the
			// jitter buffer's delay) to be heard.
			for _, c := range []*webrtctest.Client{alice, carol, bob} {
				n := c.Packets()
				for deadline := time.Now().Add(20 * time.Second); c.Packets() < n+25 && time.Now().Before(deadline); {
					time.Sleep(20 * time.Millisecond)
				}
			}
			// A tone mixed in arrives at about -15 dB. What a speaker
			// "hears" of its own is the other tone's codec and
			// concealment residue in that bin: -55 to -58 dB on a quiet
			// machine, -49.4 dB once under load. -40 dB tells a mix-in
			// from the residue with 25 dB and 9 dB to spare.
			const present, absent = -30, -40
			check := func(who string, c *webrtctest.Client, mark int, f float64, heard bool) {
				db := c.LevelSince(mark, f)
				t.Logf("%s hears %v Hz at %.1f dB", who, f, db)
				if heard && db < present || !heard && db > absent {
					t.Errorf("%s hears %v Hz at %.1f dB; want heard=%v", who, f, db, heard)
				}
			}
			if pts := bob.PayloadTypes(); pts[webrtc.REDPayloadType] == 0 || pts[webrtc.OpusPayloadType] != 0 {
				t.Errorf("bob negotiated RED and got payload types %v", pts)
			}
			check("bob", bob, mb, 440, true)
			check("bob", bob, mb, 660, true)
			check("alice", alice, ma, 660, true)
			check("alice", alice, ma, 440, false)
			check("carol", carol, mc, 440, true)
			check("carol", carol, mc, 660, false)

			// The browser's receiver reports reach the session: bob has a
			// reception block.
			for deadline := time.Now().Add(20 * time.Second); v.Reception == nil && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
				ts.mustCall("GET", "/v1/rooms/r/participants/bob", "", 200, &v)
			}
			if v.Reception == nil {
				t.Error("no reception block for the WebRTC listener")
			}

			// DELETE the Location leaves; the connection closes.
			ts.mustCall("DELETE", "/v1/rooms/r/participants/bob", "", 204, nil)
			ts.mustCall("GET", "/v1/rooms/r/participants/bob", "", 404, nil)
		})
	}
}

// TestWebRTCConsentLossTimesOut: a listener whose network vanishes (its
// socket drops everything) is removed with the reason "timeout".
func TestWebRTCConsentLossTimesOut(t *testing.T) {
	ts := startServer(t, "")
	var left = make(chan engine.Event, 4)
	r, err := ts.s.createRoom(createRoomRequest{ID: "r"})
	if err != nil {
		t.Fatal(err)
	}
	events, cancel := r.hub.subscribe()
	defer cancel()
	go func() {
		for e := range events {
			if e.Type == "left" {
				left <- engine.Event{Participant: e.Participant, Reason: e.Reason}
			}
		}
	}()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sw := &webrtctest.Switch{PacketConn: conn}
	bob := newWebRTCClient(t, webrtctest.Options{Conn: sw})
	if status, _ := ts.whip(bob, "/v1/rooms/r/whep?id=bob", ""); status != 201 {
		t.Fatalf("whep: %d", status)
	}
	sw.Off()
	off := time.Now()
	select {
	case e := <-left:
		t.Logf("bob left with reason %q %v after its network vanished (ICE disconnected and failed timeouts 1 s each)", e.Reason, time.Since(off).Round(10*time.Millisecond))
		if e.Participant != "bob" || e.Reason != "timeout" {
			t.Errorf("left: %+v", e)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("bob was not removed within 20 s")
	}
	resp, err := http.Get(ts.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "\nhandsup_webrtc_peers_failed_total 1\n") {
		t.Error("/metrics does not count the failed peer in handsup_webrtc_peers_failed_total")
	}
}

// TestWebRTCRefusals: WHIP and WHEP refuse what they must, each with its
// status.
func TestWebRTCRefusals(t *testing.T) {
	ts := startServer(t, adminTok)
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	ts.mustCall("POST", "/v1/rooms", `{"id":"closed","invite_only":true}`, 201, nil)
	post := func(path, ctype, bearer, body string) int {
		status, _ := ts.do("POST", path, ctype, bearer, body)
		return status
	}
	for _, tc := range []struct {
		name, path, ctype, bearer, body string
		want                            int
	}{
		{"no token", "/v1/rooms/r/whep?id=bob", "application/sdp", "", "v=0", 401},
		{"wrong token", "/v1/rooms/r/whep?id=bob", "application/sdp", "nope", "v=0", 401},
		{"invite-only", "/v1/rooms/closed/whep?id=bob", "application/sdp", adminTok, "v=0", 403},
		{"JSON body", "/v1/rooms/r/whep?id=bob", "application/json", adminTok, "{}", 415},
		{"no id", "/v1/rooms/r/whep", "application/sdp", adminTok, "v=0", 400},
		{"bad role", "/v1/rooms/r/whip?id=a&role=king", "application/sdp", adminTok, "v=0", 400},
		{"garbage offer", "/v1/rooms/r/whip?id=a", "application/sdp", adminTok, "v=0\r\nnonsense", 400},
		{"no room", "/v1/rooms/none/whep?id=bob", "application/sdp", adminTok, "v=0", 404},
	} {
		if got := post(tc.path, tc.ctype, tc.bearer, tc.body); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	// An invite in the Authorization header admits its holder.
	var inv struct{ Invite string }
	ts.mustCall("POST", "/v1/rooms/closed/invites", `{"id":"bob","role":"listener"}`, 201, &inv)
	bob := newWebRTCClient(t, webrtctest.Options{})
	if status, _ := ts.whip(bob, "/v1/rooms/closed/whep?id=bob", inv.Invite); status != 201 {
		t.Errorf("invited WHEP: %d", status)
	}
	if status, _ := ts.whip(newWebRTCClient(t, webrtctest.Options{}), "/v1/rooms/closed/whep?id=eve", inv.Invite); status != 403 {
		t.Errorf("WHEP with someone else's invite: %d", status)
	}
}

// TestWebRTCICERestart: a listener restarts ICE mid-stream (a new offer
// with new credentials, or a trickle-ICE fragment with them, PATCHed to
// its Location, as after a network change). It stays in the room with the same SSRC, its sequence numbers
// run on, it loses at most a second of audio, and it hears the speaker
// after the restart.
func TestWebRTCICERestart(t *testing.T) {
	for _, ctype := range []string{sdpType, fragType} {
		t.Run(strings.TrimPrefix(ctype, "application/"), func(t *testing.T) { testICERestart(t, ctype) })
	}
}

func testICERestart(t *testing.T, ctype string) {
	ts := startServer(t, "")
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	alice := newWebRTCClient(t, webrtctest.Options{Send: true})
	bob := newWebRTCClient(t, webrtctest.Options{})
	ts.mustWHIP(alice, "/v1/rooms/r/whip?id=alice")
	ts.mustWHIP(bob, "/v1/rooms/r/whep?id=bob")
	var before participantView
	ts.mustCall("GET", "/v1/rooms/r/participants/bob", "", 200, &before)
	rm, _ := ts.s.room("r")
	m, _ := rm.Member("bob")
	remoteUfrag := func() string { // the client's ICE username fragment, as the server has it
		sdp := m.Link().(*webrtc.Peer).PeerConnection().RemoteDescription().SDP
		_, rest, _ := strings.Cut(sdp, "a=ice-ufrag:")
		ufrag, _, _ := strings.Cut(rest, "\r\n")
		return ufrag
	}
	oldUfrag := remoteUfrag()

	talked := make(chan error, 1)
	go func() { talked <- alice.Talk(440, 200) }()
	for deadline := time.Now().Add(20 * time.Second); bob.Packets() < 25 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	restart, accept := bob.RestartOffer, bob.Accept
	if ctype == fragType {
		restart, accept = bob.RestartFrag, bob.AcceptFrag
	}
	offer, err := restart(ctx)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("PATCH", ts.base+"/v1/rooms/r/participants/bob", strings.NewReader(offer))
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PATCH with a new offer: %d %s", resp.StatusCode, answer)
	}
	if got := resp.Header.Get("Content-Type"); got != ctype {
		t.Errorf("answer Content-Type %q, want %q", got, ctype)
	}
	if err := accept(string(answer)); err != nil {
		t.Fatal(err)
	}
	mark, restartedAt := bob.Mark(), bob.Packets()
	if err := <-talked; err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); bob.Packets() < restartedAt+50 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}

	if st := ts.s.webrtc.Stats(); st.Renegotiations != 1 || remoteUfrag() == oldUfrag {
		t.Errorf("renegotiations: %d; ICE credentials %q, then %q", st.Renegotiations, oldUfrag, remoteUfrag())
	}
	var after participantView
	ts.mustCall("GET", "/v1/rooms/r/participants/bob", "", 200, &after)
	if after.SSRC != before.SSRC || after.Role != "listener" {
		t.Errorf("bob before the restart %+v, after %+v", before, after)
	}
	seqs := bob.Seqs()
	maxGap := 0
	for i := 1; i < len(seqs); i++ {
		d := int(uint16(seqs[i] - seqs[i-1]))
		if d == 0 || d > 1<<15 {
			t.Fatalf("sequence number %d after %d: not running on", seqs[i], seqs[i-1])
		}
		maxGap = max(maxGap, d-1)
	}
	t.Logf("%d packets, largest gap %d packets", len(seqs), maxGap)
	if maxGap > 50 {
		t.Errorf("lost %d packets in a row (%d ms) across the restart", maxGap, 20*maxGap)
	}
	if db := bob.LevelSince(mark, 440); db < -30 {
		t.Errorf("after the restart bob hears the speaker at %.1f dB", db)
	}
}

// do sends one request with a body of ctype and a bearer credential (none
// when empty) and returns the status and body.
func (ts *testServer) do(method, path, ctype, bearer, body string) (int, string) {
	ts.t.Helper()
	resp, data := ts.send(method, path, ctype, bearer, body)
	return resp.StatusCode, data
}

// send is do that returns the response, its body read and closed.
func (ts *testServer) send(method, path, ctype, bearer, body string) (*http.Response, string) {
	ts.t.Helper()
	req, _ := http.NewRequest(method, ts.base+path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// TestWebRTCResourceByInvite: a WHEP listener that joined an invite-only
// room with its invite (a participant token) uses the same token on its
// Location: it restarts ICE (an SDP offer) and leaves (DELETE, reason
// "left"). Its token does not promote it, and someone else's token, a
// forged one or none do nothing.
func TestWebRTCResourceByInvite(t *testing.T) {
	ts := startServer(t, adminTok)
	ts.mustCall("POST", "/v1/rooms", `{"id":"closed","invite_only":true}`, 201, nil)
	var bobInv, eveInv struct{ Invite string }
	ts.mustCall("POST", "/v1/rooms/closed/invites", `{"id":"bob","role":"listener"}`, 201, &bobInv)
	ts.mustCall("POST", "/v1/rooms/closed/invites", `{"id":"eve","role":"listener"}`, 201, &eveInv)
	rm, _ := ts.s.room("closed")
	events, cancel := rm.hub.subscribe()
	defer cancel()
	bob := newWebRTCClient(t, webrtctest.Options{})
	status, loc := ts.whip(bob, "/v1/rooms/closed/whep?id=bob", bobInv.Invite)
	if status != 201 {
		t.Fatalf("invited WHEP: %d", status)
	}
	forged := bobInv.Invite[:len(bobInv.Invite)-4] + "AAAA"
	for _, tc := range []struct {
		name, method, ctype, bearer, body string
		want                              int
	}{
		{"PATCH offer, no credential", "PATCH", sdpType, "", "v=0", 401},
		{"PATCH offer, garbage", "PATCH", sdpType, "nope", "v=0", 401},
		{"PATCH offer, someone else's invite", "PATCH", sdpType, eveInv.Invite, "v=0", 403},
		{"PATCH offer, forged invite", "PATCH", sdpType, forged, "v=0", 401},
		{"PATCH fragment, someone else's invite", "PATCH", fragType, eveInv.Invite, "a=ice-ufrag:x", 403},
		{"PATCH role with own invite", "PATCH", "application/json", bobInv.Invite, `{"role":"speaker"}`, 403},
		{"PATCH mute, no credential", "PATCH", "application/json", "", `{"muted":true}`, 401},
		{"DELETE, no credential", "DELETE", "", "", "", 401},
		{"DELETE, someone else's invite", "DELETE", "", eveInv.Invite, "", 403},
	} {
		if got, body := ts.do(tc.method, loc, tc.ctype, tc.bearer, tc.body); got != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, got, body, tc.want)
		}
	}
	var v participantView
	ts.mustCall("GET", loc, "", 200, &v)
	if v.Role != "listener" || v.Muted {
		t.Errorf("after refused PATCHes: %+v", v)
	}

	// An ICE restart with the invite.
	ctx, cancelCtx := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancelCtx()
	offer, err := bob.RestartOffer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, answer := ts.do("PATCH", loc, sdpType, bobInv.Invite, offer)
	if got != 200 {
		t.Fatalf("ICE restart with the invite: %d %s", got, answer)
	}
	if err := bob.Accept(answer); err != nil {
		t.Fatal(err)
	}
	if st := ts.s.webrtc.Stats(); st.Renegotiations != 1 {
		t.Errorf("renegotiations: %d", st.Renegotiations)
	}

	// Leaving with the invite.
	if got, body := ts.do("DELETE", loc, "", bobInv.Invite, ""); got != 204 {
		t.Fatalf("DELETE with the invite: %d %s", got, body)
	}
	ts.mustCall("GET", loc, "", 404, nil)
	for timeout := time.After(20 * time.Second); ; {
		select {
		case e := <-events:
			if e.Type != "left" {
				continue
			}
			if e.Participant != "bob" || e.Reason != "left" {
				t.Errorf("left: %+v", e)
			}
		case <-timeout:
			t.Error("no left event")
		}
		break
	}
	// The admin token still does everything.
	ts.mustCall("POST", "/v1/rooms/closed/invites", `{"id":"carol","role":"listener"}`, 201, &eveInv)
	carol := newWebRTCClient(t, webrtctest.Options{})
	if status, loc = ts.whip(carol, "/v1/rooms/closed/whep?id=carol", eveInv.Invite); status != 201 {
		t.Fatalf("carol: %d", status)
	}
	ts.mustCall("PATCH", loc, `{"muted":true}`, 200, nil)
	ts.mustCall("DELETE", loc, "", 204, nil)
}

// TestWebRTCICEServerLinks: a WHEP answer carries the STUN server and the
// TURN server with credentials made for the participant (RFC 9725 §4.6),
// which a TURN server with the same secret accepts: the HMAC is checked
// here with crypto/hmac, not with the server's function.
func TestWebRTCICEServerLinks(t *testing.T) {
	ts := startServer(t, "", func(c *Config) {
		c.ICEServers = webrtc.ICEServers{
			URLs:       []string{"stun:stun.example.net:3478", "turn:turn.example.net:3478?transport=udp"},
			TURNSecret: []byte("north"), TURNTTL: time.Hour,
		}
	})
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	before := time.Now()
	status, h := ts.whipHeader(newWebRTCClient(t, webrtctest.Options{}), "/v1/rooms/r/whep?id=bob", "")
	if status != 201 {
		t.Fatalf("whep: %d", status)
	}
	links := h.Values("Link")
	if len(links) != 2 || links[0] != `<stun:stun.example.net:3478>; rel="ice-server"` {
		t.Fatalf("Link headers %q", links)
	}
	const pre = `<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="`
	rest, ok := strings.CutPrefix(links[1], pre)
	if !ok {
		t.Fatalf("TURN Link %q", links[1])
	}
	username, rest, _ := strings.Cut(rest, `"; credential="`)
	credential, rest, _ := strings.Cut(rest, `"`)
	if rest != `; credential-type="password"` {
		t.Errorf("TURN Link %q", links[1])
	}
	exp, id, _ := strings.Cut(username, ":")
	expiry, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || id != "bob" || expiry < before.Add(time.Hour).Unix() || expiry > time.Now().Add(time.Hour).Unix() {
		t.Errorf("TURN username %q: want <now + 1 h>:bob", username)
	}
	m := hmac.New(sha1.New, []byte("north"))
	m.Write([]byte(username))
	if want := base64.StdEncoding.EncodeToString(m.Sum(nil)); credential != want {
		t.Errorf("TURN credential %q, want %q", credential, want)
	}
}

// TestWebRTCPromotedListenerSpeaks: a WHEP listener promoted to the stage
// (PATCH role=speaker) PATCHes a new offer whose audio section is
// sendrecv on its Location, on the same connection. The server answers
// sendrecv and takes its audio: another listener hears its tone, and it
// keeps its id, its SSRC and its stream's sequence numbers.
func TestWebRTCPromotedListenerSpeaks(t *testing.T) {
	ts := startServer(t, "")
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	bob := newWebRTCClient(t, webrtctest.Options{})
	carol := newWebRTCClient(t, webrtctest.Options{})
	ts.mustWHIP(bob, "/v1/rooms/r/whep?id=bob")
	ts.mustWHIP(carol, "/v1/rooms/r/whep?id=carol")
	// Both hear the room (silence, with DTX) before the promotion.
	for deadline := time.Now().Add(20 * time.Second); bob.Packets() < 3 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	var before participantView
	ts.mustCall("GET", "/v1/rooms/r/participants/bob", "", 200, &before)

	ts.mustCall("PATCH", "/v1/rooms/r/participants/bob", `{"role":"speaker"}`, 200, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	offer, err := bob.SendOffer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	status, answer := ts.do("PATCH", "/v1/rooms/r/participants/bob", sdpType, "", offer)
	if status != 200 {
		t.Fatalf("PATCH with a sendrecv offer: %d %s", status, answer)
	}
	if !strings.Contains(answer, "a=sendrecv") {
		t.Errorf("the answer to a sendrecv offer is not sendrecv:\n%s", answer)
	}
	if err := bob.Accept(answer); err != nil {
		t.Fatal(err)
	}
	mark := carol.Mark()
	if err := bob.Talk(660, 100); err != nil {
		t.Fatal(err)
	}
	for n, deadline := carol.Packets(), time.Now().Add(20*time.Second); carol.Packets() < n+25 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	db := carol.LevelSince(mark, 660)
	t.Logf("carol hears the promoted listener at %.1f dB", db)
	if db < -30 {
		t.Errorf("carol hears the promoted listener at %.1f dB", db)
	}
	var after participantView
	ts.mustCall("GET", "/v1/rooms/r/participants/bob", "", 200, &after)
	if after.Role != "speaker" || after.SSRC != before.SSRC || after.Uplink == nil || after.Uplink.PacketsReceived < 50 {
		t.Errorf("bob before %+v, after %+v (uplink %+v)", before, after, after.Uplink)
	} else {
		t.Logf("server received %d of bob's packets", after.Uplink.PacketsReceived)
	}
	if ssrcs := bob.SSRCs(); len(ssrcs) != 1 {
		t.Errorf("bob received SSRCs %v", ssrcs)
	}
	seqs := bob.Seqs()
	for i := 1; i < len(seqs); i++ {
		if d := uint16(seqs[i] - seqs[i-1]); d == 0 || d > 1<<15 {
			t.Fatalf("bob's sequence number %d after %d: not running on", seqs[i], seqs[i-1])
		}
	}
}

// TestWebRTCReportedAudioLevel: a WHIP speaker that offers the RFC 6464
// audio-level extension, as Chrome does, gets it in the answer, and the
// level and voice activity its packets report show in its participant
// view beside the level the server measures.
func TestWebRTCReportedAudioLevel(t *testing.T) {
	ts := startServer(t, "")
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	alice := newWebRTCClient(t, webrtctest.Options{Send: true, AudioLevel: true})
	ts.mustWHIP(alice, "/v1/rooms/r/whip?id=alice")
	if !strings.Contains(alice.PC.RemoteDescription().SDP, webrtc.AudioLevelURI) {
		t.Fatal("the answer has no audio-level extension")
	}
	var v participantView
	for _, want := range []reportedLevelView{{25, true}, {127, false}} {
		alice.SetReportedLevel(want.Level, want.VoiceActivity)
		if err := alice.Talk(440, 25); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			ts.mustCall("GET", "/v1/rooms/r/participants/alice", "", 200, &v)
			if v.ReportedLevel != nil && *v.ReportedLevel == want {
				break
			}
		}
		if v.ReportedLevel == nil || *v.ReportedLevel != want {
			t.Errorf("reported level %+v, want %+v", v.ReportedLevel, want)
		}
	}
	// A client without the extension shows none.
	carol := newWebRTCClient(t, webrtctest.Options{Send: true})
	ts.mustWHIP(carol, "/v1/rooms/r/whip?id=carol")
	if err := carol.Talk(660, 10); err != nil {
		t.Fatal(err)
	}
	var cv participantView
	ts.mustCall("GET", "/v1/rooms/r/participants/carol", "", 200, &cv)
	if cv.ReportedLevel != nil || cv.Role != "speaker" {
		t.Errorf("carol without the extension: %+v, reported level %+v", cv, cv.ReportedLevel)
	}
	// Plain RTP declares its id at join: 1 to 14.
	ts.mustCall("POST", "/v1/rooms/r/participants", `{"id":"dan","role":"speaker","rtp":{"audio_level_ext_id":15}}`, 400, nil)
	ts.mustCall("POST", "/v1/rooms/r/participants", `{"id":"dan","role":"speaker","rtp":{"audio_level_ext_id":1}}`, 201, nil)
}
