package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/access"
	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/internal/webrtctest"
	"github.com/handsup-audio/handsup/jitter"
	"github.com/handsup-audio/handsup/session/webrtc"
)

// adminTok is the admin token of the tests' servers.
const adminTok = "admin-token-for-the-tests"

// testServer is a real server on loopback ports the kernel picked.
type testServer struct {
	t     *testing.T
	s     *Server
	base  string
	token string
}

// startServer starts a server; opts change its Config first.
func startServer(t *testing.T, token string, opts ...func(*Config)) *testServer {
	t.Helper()
	cfg := Config{
		HTTPAddr: "127.0.0.1:0", RTPAddr: "127.0.0.1:0", AdminToken: token,
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		SRInterval: 200 * time.Millisecond,
		// WebRTC on kernel-picked ports, with ICE timeouts short enough
		// for a consent loss to show within a test.
		WebRTC: webrtc.Config{
			UDPAddr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0",
			DisconnectedTimeout: time.Second, FailedTimeout: time.Second,
			KeepAlive: 200 * time.Millisecond, LoggerFactory: webrtctest.Quiet,
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(3 * time.Second):
			t.Error("server did not stop within 3 s")
		}
	})
	return &testServer{t: t, s: s, base: "http://" + s.HTTPAddr().String(), token: token}
}

// call does one API request and decodes a JSON answer into out (if set).
func (ts *testServer) call(method, path, body string, out any) int {
	ts.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.base+path, rd)
	if err != nil {
		ts.t.Fatal(err)
	}
	if ts.token != "" {
		req.Header.Set("Authorization", "Bearer "+ts.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			ts.t.Fatalf("%s %s: answer is not JSON: %q", method, path, data)
		}
	}
	return resp.StatusCode
}

func (ts *testServer) mustCall(method, path, body string, want int, out any) {
	ts.t.Helper()
	if got := ts.call(method, path, body, out); got != want {
		ts.t.Fatalf("%s %s: status %d, want %d", method, path, got, want)
	}
}

// udpClient is a participant's socket: it sends a tone as Opus/RTP and
// decodes what the server sends it.
type udpClient struct {
	t    *testing.T
	conn *net.UDPConn
	to   *net.UDPAddr
	enc  *codec.Encoder
	seq  uint16
	ts   uint32
	sent int

	mu     sync.Mutex
	dec    *codec.Decoder
	heard  []int16
	pkts   int
	rtcp   [][]byte
	rtcpAt []time.Time    // when each RTCP datagram arrived
	raw    [][]byte       // every RTP packet received, as it came
	rawAt  []time.Time    // when each of raw arrived
	player *jitter.Player // set for a buffered client
	pkt    rtp.Packet
}

// newBufferedClient is a udpClient that plays what it receives as a real
// client does: through a jitter.Player, every 20 ms, with FEC and
// concealment, instead of decoding packets as they come.
func newBufferedClient(t *testing.T, server *net.UDPAddr) *udpClient {
	player, err := jitter.NewPlayer(jitter.PlayerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c := newUDPClient(t, server)
	c.mu.Lock()
	c.player = player
	c.mu.Unlock()
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var pcm [codec.FrameSamples]int16
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				c.mu.Lock()
				c.player.Next(now, pcm[:])
				c.heard = append(c.heard, pcm[:]...)
				c.mu.Unlock()
			}
		}
	}()
	return c
}

func newUDPClient(t *testing.T, server *net.UDPAddr) *udpClient {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	enc, err := codec.NewEncoder(codec.EncoderConfig{Bitrate: 64000})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := codec.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	c := &udpClient{t: t, conn: conn, to: server, enc: enc, dec: dec, seq: 77, ts: 1234}
	go c.receive()
	return c
}

func (c *udpClient) addr() string { return c.conn.LocalAddr().String() }

func (c *udpClient) receive() {
	buf := make([]byte, 2048)
	pcm := make([]int16, codec.MaxFrameSamples)
	for {
		n, err := c.conn.Read(buf)
		if err != nil {
			return
		}
		if n >= 2 && buf[1] >= 192 && buf[1] <= 223 {
			c.mu.Lock()
			c.rtcp = append(c.rtcp, append([]byte(nil), buf[:n]...))
			c.rtcpAt = append(c.rtcpAt, time.Now())
			c.mu.Unlock()
			continue
		}
		if n < 12 {
			continue
		}
		c.mu.Lock()
		c.pkts++
		c.raw = append(c.raw, append([]byte(nil), buf[:n]...))
		c.rawAt = append(c.rawAt, time.Now())
		if c.player != nil {
			if c.pkt.Unmarshal(buf[:n]) == nil {
				c.player.Buffer().Push(&c.pkt, time.Now())
			}
			c.mu.Unlock()
			continue
		}
		c.mu.Unlock()
		k, err := c.dec.Decode(buf[12:n], pcm)
		c.mu.Lock()
		if err == nil {
			c.heard = append(c.heard, pcm[:k]...)
		}
		c.mu.Unlock()
	}
}

// speak sends the next 20 ms of a tone.
func (c *udpClient) speak(freq float64) {
	var pcm [codec.FrameSamples]int16
	signal.Tone(pcm[:], freq, 8000, c.sent*codec.FrameSamples)
	c.sent++
	var pkt [1500]byte
	n, err := c.enc.Encode(pcm[:], pkt[12:])
	if err != nil {
		c.t.Fatal(err)
	}
	c.send(c.header(pkt[:12], 111), pkt[:12+n])
}

func (c *udpClient) header(h []byte, pt byte) []byte {
	h[0], h[1] = 0x80, pt
	binary.BigEndian.PutUint16(h[2:], c.seq)
	binary.BigEndian.PutUint32(h[4:], c.ts)
	binary.BigEndian.PutUint32(h[8:], 0xABCD)
	c.seq++
	c.ts += codec.FrameSamples
	return h
}

func (c *udpClient) send(_ []byte, pkt []byte) {
	if _, err := c.conn.WriteToUDP(pkt, c.to); err != nil {
		c.t.Fatal(err)
	}
}

func (c *udpClient) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.heard)
}

// levelSince is the level of freq in what c heard since mark, block by
// block: a real-time path may drop or insert a frame anywhere (a jitter
// buffer adapting, a late tick on a busy machine), which breaks the tone's
// phase but not whether it is heard.
func (c *udpClient) levelSince(mark int, freq float64) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return signal.ToneLevelDB(c.heard[mark:], freq)
}

// talk sends frames of freq from c in real time (the server's clock is
// real), 20 ms apart.
func talk(c *udpClient, freq float64, frames int) {
	next := time.Now()
	for range frames {
		c.speak(freq)
		next = next.Add(20 * time.Millisecond)
		time.Sleep(time.Until(next))
	}
}

func TestAPIRoomLifecycle(t *testing.T) {
	ts := startServer(t, adminTok)
	var room map[string]any
	ts.mustCall("POST", "/v1/rooms", `{"id":"r1","max_speakers":3,"top_n":2}`, 201, &room)
	if room["id"] != "r1" || room["top_n"] != float64(2) {
		t.Errorf("created room: %v", room)
	}
	spk := newUDPClient(t, net.UDPAddrFromAddrPort(ts.s.RTPAddr()))
	var joined map[string]any
	ts.mustCall("POST", "/v1/rooms/r1/participants",
		fmt.Sprintf(`{"id":"alice","role":"speaker","rtp":{"addr":%q}}`, spk.addr()), 201, &joined)
	if joined["server_rtp_addr"] != ts.s.RTPAddr().String() || joined["ssrc"] == nil {
		t.Errorf("join answer: %v", joined)
	}
	lis := newUDPClient(t, net.UDPAddrFromAddrPort(ts.s.RTPAddr()))
	ts.mustCall("POST", "/v1/rooms/r1/participants",
		fmt.Sprintf(`{"id":"bob","role":"listener","rtp":{"addr":%q}}`, lis.addr()), 201, nil)

	ts.mustCall("POST", "/v1/rooms/r1/participants/bob/hand", "", 200, nil)
	var got map[string]any
	ts.mustCall("GET", "/v1/rooms/r1", "", 200, &got)
	if got["hands_raised"] != float64(1) || got["speakers"] != float64(1) || got["listeners"] != float64(1) {
		t.Errorf("room: %v", got)
	}
	ts.mustCall("PATCH", "/v1/rooms/r1/participants/bob", `{"role":"speaker","muted":true,"gain_db":-3}`, 200, &got)
	if got["role"] != "speaker" || got["muted"] != true || got["gain_db"] != float64(-3) {
		t.Errorf("patched: %v", got)
	}
	ts.mustCall("DELETE", "/v1/rooms/r1/participants/bob/hand", "", 200, nil)
	var list map[string][]map[string]any
	ts.mustCall("GET", "/v1/rooms", "", 200, &list)
	if len(list["rooms"]) != 1 || list["rooms"][0]["participants"] != float64(2) {
		t.Errorf("rooms: %v", list)
	}
	ts.mustCall("DELETE", "/v1/rooms/r1/participants/bob", "", 204, nil)
	// bob's address is free again.
	ts.mustCall("POST", "/v1/rooms/r1/participants",
		fmt.Sprintf(`{"id":"bob2","role":"listener","rtp":{"addr":%q}}`, lis.addr()), 201, nil)
	ts.mustCall("DELETE", "/v1/rooms/r1", "", 204, nil)
	ts.mustCall("GET", "/v1/rooms/r1", "", 404, nil)
	if n := ts.s.udp.Peers(); n != 0 {
		t.Errorf("%d addresses still declared after the room closed", n)
	}
}

// TestInviteOnlyRooms: an invite is a participant token with the grants
// of its role; an invite-only room takes one from everyone, even the
// admin, for its room and identity, with the grant of the role asked
// for, not tampered with, not expired.
func TestInviteOnlyRooms(t *testing.T) {
	ts := startServer(t, adminTok)
	ts.mustCall("POST", "/v1/rooms", `{"id":"vip","invite_only":true}`, 201, nil)
	ts.mustCall("POST", "/v1/rooms", `{"id":"other"}`, 201, nil)
	var inv, lis, elsewhere map[string]any
	ts.mustCall("POST", "/v1/rooms/vip/invites", `{"id":"carol","role":"speaker","ttl_seconds":60}`, 201, &inv)
	ts.mustCall("POST", "/v1/rooms/vip/invites", `{"id":"lena","role":"listener"}`, 201, &lis)
	ts.mustCall("POST", "/v1/rooms/other/invites", `{"id":"carol","role":"speaker"}`, 201, &elsewhere)
	if inv["invite"] != inv["token"] || inv["id"] != "carol" || fmt.Sprint(inv["grants"]) != "[listen speak]" {
		t.Errorf("invite answer: %v", inv)
	}
	join := func(id, role string, bearer any) int {
		c := newUDPClient(t, net.UDPAddrFromAddrPort(ts.s.RTPAddr()))
		body := fmt.Sprintf(`{"id":%q,"role":%q,"rtp":{"addr":%q}}`, id, role, c.addr())
		anon := *ts
		anon.token, _ = bearer.(string) // a client joins with its invite, not the admin token
		return anon.call("POST", "/v1/rooms/vip/participants", body, nil)
	}
	expired, _, err := ts.s.tokens.Issue(access.Claims{Room: "vip", Identity: "carol", Grants: []access.Grant{access.Speak}},
		time.Now().Add(-2*time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, id, role string
		bearer         any
		want           int
	}{
		{"a listener's invite on stage", "lena", "speaker", lis["invite"], 403},
		{"invite for another participant", "dave", "speaker", inv["invite"], 403},
		{"invite for another room", "carol", "speaker", elsewhere["invite"], 403},
		{"tampered invite", "carol", "speaker", inv["invite"].(string) + "x", 401},
		{"no invite", "carol", "speaker", "", 403},
		{"the admin token", "carol", "speaker", adminTok, 403},
		{"expired invite", "carol", "speaker", expired, 401},
		{"valid invite", "carol", "speaker", inv["invite"], 201},
		{"a speaker's invite in the audience", "carol2", "listener", inv["invite"], 403},
		{"listener's invite, identity from the token", "", "listener", lis["invite"], 201},
	} {
		if got := join(tc.id, tc.role, tc.bearer); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	var v participantView
	ts.mustCall("GET", "/v1/rooms/vip/participants/lena", "", 200, &v)
}

func TestOpenAPIDocumentMatchesRoutes(t *testing.T) {
	ts := startServer(t, "")
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	ts.mustCall("GET", "/v1/openapi.json", "", 200, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, rt := range apiRoutes {
		key := rt.method + " " + rt.pattern
		served[key] = true
		if !documented[key] {
			t.Errorf("route %s is not in the OpenAPI document", key)
		}
	}
	for key := range documented {
		if !served[key] {
			t.Errorf("the OpenAPI document has %s, which the server does not serve", key)
		}
	}
}

// TestBadRequests: every bad request gets its documented 4xx as JSON, and
// none a 500.
func TestBadRequests(t *testing.T) {
	ts := startServer(t, adminTok)
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	c := newUDPClient(t, net.UDPAddrFromAddrPort(ts.s.RTPAddr()))
	ts.mustCall("POST", "/v1/rooms/r/participants", fmt.Sprintf(`{"id":"a","role":"speaker","rtp":{"addr":%q}}`, c.addr()), 201, nil)
	lis := newUDPClient(t, net.UDPAddrFromAddrPort(ts.s.RTPAddr()))
	ts.mustCall("POST", "/v1/rooms/r/participants", fmt.Sprintf(`{"id":"lis","role":"listener","rtp":{"addr":%q}}`, lis.addr()), 201, nil)
	// The room keeps mixing while the bad requests come: a tone from a,
	// checked on what the listener decodes.
	talk(c, 440, 25)
	mark := lis.mark()
	talking := make(chan struct{})
	go func() {
		defer close(talking)
		talk(c, 440, 75)
	}()
	big := `{"id":"` + strings.Repeat("x", 70<<10) + `"}`
	cases := []struct {
		name, method, path, body string
		noAuth                   bool
		badAuth                  bool
		want                     int
	}{
		{"no token", "GET", "/v1/rooms", "", true, false, 401},
		{"wrong token", "GET", "/v1/rooms", "", false, true, 401},
		{"bad JSON", "POST", "/v1/rooms", `{"id":`, false, false, 400},
		{"empty body", "POST", "/v1/rooms", "", false, false, 400},
		{"unknown field", "POST", "/v1/rooms", `{"id":"x","colour":"red"}`, false, false, 400},
		{"two JSON values", "POST", "/v1/rooms", `{"id":"x"}{"id":"y"}`, false, false, 400},
		{"wrong type", "POST", "/v1/rooms", `{"id":42}`, false, false, 400},
		{"bad room id", "POST", "/v1/rooms", `{"id":"a b/c"}`, false, false, 400},
		{"negative max_speakers", "POST", "/v1/rooms", `{"id":"x","max_speakers":-1}`, false, false, 400},
		{"top_n too big", "POST", "/v1/rooms", `{"id":"x","top_n":99}`, false, false, 400},
		{"duplicate room", "POST", "/v1/rooms", `{"id":"r"}`, false, false, 409},
		{"body too big", "POST", "/v1/rooms", big, false, false, 413},
		{"unknown room", "GET", "/v1/rooms/nope", "", false, false, 404},
		{"delete unknown room", "DELETE", "/v1/rooms/nope", "", false, false, 404},
		{"join unknown room", "POST", "/v1/rooms/nope/participants", `{"id":"a","role":"speaker","rtp":{"addr":"127.0.0.1:9"}}`, false, false, 404},
		{"bad role", "POST", "/v1/rooms/r/participants", `{"id":"b","role":"king","rtp":{"addr":"127.0.0.1:9"}}`, false, false, 400},
		{"recv_addr without addr", "POST", "/v1/rooms/r/participants", `{"id":"b","role":"speaker","rtp":{"recv_addr":"127.0.0.1:9"}}`, false, false, 400},
		{"bad address", "POST", "/v1/rooms/r/participants", `{"id":"b","role":"speaker","rtp":{"addr":"nowhere"}}`, false, false, 400},
		{"port zero", "POST", "/v1/rooms/r/participants", `{"id":"b","role":"speaker","rtp":{"addr":"127.0.0.1:0"}}`, false, false, 400},
		{"static payload type", "POST", "/v1/rooms/r/participants", `{"id":"b","role":"speaker","rtp":{"addr":"127.0.0.1:9","payload_type":0}}`, false, false, 400},
		{"duplicate participant", "POST", "/v1/rooms/r/participants", `{"id":"a","role":"speaker","rtp":{"addr":"127.0.0.1:9"}}`, false, false, 409},
		{"address taken", "POST", "/v1/rooms/r/participants", fmt.Sprintf(`{"id":"z","role":"listener","rtp":{"addr":%q}}`, c.addr()), false, false, 409},
		{"unknown participant", "GET", "/v1/rooms/r/participants/nobody", "", false, false, 404},
		{"patch bad role", "PATCH", "/v1/rooms/r/participants/a", `{"role":"god"}`, false, false, 400},
		{"patch gain out of range", "PATCH", "/v1/rooms/r/participants/a", `{"gain_db":99}`, false, false, 400},
		{"patch unknown", "PATCH", "/v1/rooms/r/participants/nobody", `{"muted":true}`, false, false, 404},
		{"hand unknown", "POST", "/v1/rooms/r/participants/nobody/hand", "", false, false, 404},
		{"invite bad ttl", "POST", "/v1/rooms/r/invites", `{"id":"b","role":"speaker","ttl_seconds":-5}`, false, false, 400},
		{"invite bad role", "POST", "/v1/rooms/r/invites", `{"id":"b","role":"boss"}`, false, false, 400},
		{"join without token or invite", "POST", "/v1/rooms/r/participants", `{"id":"q","role":"listener","rtp":{"addr":"127.0.0.1:9"}}`, true, false, 401},
		{"join with a forged token", "POST", "/v1/rooms/r/participants", `{"id":"q","role":"listener","rtp":{"addr":"127.0.0.1:9"}}`, false, true, 401},
		{"an invite in the body", "POST", "/v1/rooms/r/participants", `{"id":"q","role":"listener","rtp":{"addr":"127.0.0.1:9"},"invite":"abc.def"}`, false, false, 400},
		{"token without grants", "POST", "/v1/rooms/r/tokens", `{"identity":"b"}`, false, false, 400},
		{"token unknown grant", "POST", "/v1/rooms/r/tokens", `{"identity":"b","grants":["fly"]}`, false, false, 400},
		{"token ttl over a day", "POST", "/v1/rooms/r/tokens", `{"identity":"b","grants":["listen"],"ttl_seconds":86401}`, false, false, 400},
		{"token bad identity", "POST", "/v1/rooms/r/tokens", `{"identity":"a b","grants":["listen"]}`, false, false, 400},
		{"token without a token", "POST", "/v1/rooms/r/tokens", `{"identity":"b","grants":["listen"]}`, true, false, 401},
		{"revoke without a token", "DELETE", "/v1/tokens/abc", "", true, false, 401},
		{"method not allowed", "PUT", "/v1/rooms", "", false, false, 405},
		{"unknown endpoint", "GET", "/v1/nothing", "", false, false, 404},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, ts.base+tc.path, strings.NewReader(tc.body))
		switch {
		case tc.badAuth:
			req.Header.Set("Authorization", "Bearer nope")
		case !tc.noAuth:
			req.Header.Set("Authorization", "Bearer "+adminTok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct{ Error string }
		if resp.StatusCode != tc.want {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, resp.StatusCode, tc.want, body)
		} else if json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("%s: error body is not {\"error\": ...}: %q", tc.name, body)
		}
	}
	if len(cases) < 20 {
		t.Fatalf("only %d bad requests", len(cases))
	}
	<-talking
	if db := lis.levelSince(mark, 440); db < -30 {
		t.Errorf("the listener lost the speaker during the bad requests: %.1f dB", db)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	ts := startServer(t, adminTok)
	anon := *ts
	anon.token = ""
	anon.mustCall("GET", "/healthz", "", 200, nil)
	anon.mustCall("GET", "/readyz", "", 200, nil)
	anon.mustCall("GET", "/v1/openapi.json", "", 200, nil) // the document needs no token
	if got := anon.call("GET", "/debug/pprof/", "", nil); got == 200 {
		t.Error("/debug/pprof is served without -pprof")
	}
	ts.s.draining.Store(true)
	anon.mustCall("GET", "/readyz", "", 503, nil)
	ts.mustCall("POST", "/v1/rooms", `{"id":"late"}`, 503, nil)
}

func TestRefusesOpenAPIOffLoopbackWithoutToken(t *testing.T) {
	_, err := New(Config{HTTPAddr: "0.0.0.0:0", RTPAddr: "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("server started on 0.0.0.0 without a token: %v", err)
	}
}

func TestEventsStream(t *testing.T) {
	ts := startServer(t, "")
	ts.mustCall("POST", "/v1/rooms", `{"id":"ev"}`, 201, nil)
	resp, err := http.Get(ts.base + "/v1/rooms/ev/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	c := newUDPClient(t, net.UDPAddrFromAddrPort(ts.s.RTPAddr()))
	ts.mustCall("POST", "/v1/rooms/ev/participants", fmt.Sprintf(`{"id":"x","role":"listener","rtp":{"addr":%q}}`, c.addr()), 201, nil)
	ts.mustCall("POST", "/v1/rooms/ev/participants/x/hand", "", 200, nil)
	ts.mustCall("PATCH", "/v1/rooms/ev/participants/x", `{"role":"speaker"}`, 200, nil)
	ts.mustCall("DELETE", "/v1/rooms/ev", "", 204, nil)
	data, _ := io.ReadAll(resp.Body) // the stream ends when the room closes
	for _, want := range []string{"event: joined", "event: hand_raised", "event: role_changed", "event: left", "event: room_closed"} {
		if !bytes.Contains(data, []byte(want)) {
			t.Errorf("stream lacks %q:\n%s", want, data)
		}
	}
}
