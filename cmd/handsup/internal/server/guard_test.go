package server

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/internal/fakeclock"
)

// TestJoinRefusesAbusiveAddresses: a join naming an address that would
// turn the server against its users (its own sockets, another
// participant's, unspecified, broadcast, multicast) is refused with a 4xx
// and counted by reason.
func TestJoinRefusesAbusiveAddresses(t *testing.T) {
	ts := startServer(t, "")
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	alice, aliceRecv := newUDPClient(t, nil), newUDPClient(t, nil)
	ts.mustCall("POST", "/v1/rooms/r/participants",
		fmt.Sprintf(`{"id":"alice","role":"speaker","rtp":{"addr":%q,"recv_addr":%q}}`, alice.addr(), aliceRecv.addr()), 201, nil)
	fresh := newUDPClient(t, nil).addr()
	rtcp := ts.s.udp.RTCPAddr().String()
	for _, tc := range []struct {
		name, addr, recv string
		status           int
	}{
		{"the server's RTP address", ts.s.RTPAddr().String(), "", 400},
		{"the server's RTCP address", rtcp, "", 400},
		{"the server's WebRTC address", ts.s.WebRTCAddr().String(), "", 400},
		{"the server's RTP address as recv_addr", fresh, ts.s.RTPAddr().String(), 400},
		{"unspecified", "0.0.0.0:6000", "", 400},
		{"broadcast", "255.255.255.255:6000", "", 400},
		{"multicast", "224.0.0.1:6000", "", 400},
		{"multicast recv_addr", fresh, "239.0.0.1:6000", 400},
		{"another participant's address", alice.addr(), "", 409},
		{"another participant's address as recv_addr", fresh, alice.addr(), 409},
		{"another participant's recv_addr", fresh, aliceRecv.addr(), 409},
	} {
		body := fmt.Sprintf(`{"id":"mallory","role":"listener","rtp":{"addr":%q,"recv_addr":%q}}`, tc.addr, tc.recv)
		if tc.recv == "" {
			body = fmt.Sprintf(`{"id":"mallory","role":"listener","rtp":{"addr":%q}}`, tc.addr)
		}
		var out map[string]string
		if got := ts.call("POST", "/v1/rooms/r/participants", body, &out); got != tc.status {
			t.Errorf("%s: status %d (%q), want %d", tc.name, got, out["error"], tc.status)
		}
	}
	for reason, want := range map[string]int{"own": 4, "unspecified": 1, "broadcast": 1, "multicast": 2, "taken": 3} {
		if got := metric(t, ts, `handsup_udp_addresses_refused_total{reason="`+reason+`"}`); got != strconv.Itoa(want) {
			t.Errorf("refusals for %s: %s, want %d", reason, got, want)
		}
	}
	if got := ts.call("POST", "/v1/rooms/r/participants",
		fmt.Sprintf(`{"id":"mallory","role":"listener","rtp":{"addr":%q}}`, fresh), nil); got != 201 {
		t.Errorf("a good address after the refusals: status %d", got)
	}
}

// TestRecvAddrNeedsConsent: a recv_addr on a host that never answers gets
// at most 5 packets; the room's other listener hears everything.
func TestRecvAddrNeedsConsent(t *testing.T) {
	ts := startServer(t, "")
	ts.mustCall("POST", "/v1/rooms", `{"id":"r","no_dtx":true}`, 201, nil) // 50 packets a second, speech or not
	src := newUDPClient(t, nil)
	victim, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}) // another host, on loopback
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	ts.mustCall("POST", "/v1/rooms/r/participants",
		fmt.Sprintf(`{"id":"mallory","role":"listener","rtp":{"addr":%q,"recv_addr":%q}}`, src.addr(), victim.LocalAddr()), 201, nil)
	const name = `handsup_udp_datagrams_unsent_total{reason="unconfirmed"}`
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n, _ := strconv.Atoi(metric(t, ts, name)); n >= 25 {
			break
		}
		if time.Now().After(deadline) { // bounds a failure only
			t.Fatalf("%s = %s after 30 s", name, metric(t, ts, name))
		}
	}
	// Everything the server sent is in the socket's queue before this
	// marker, sent after it over the same loopback.
	if _, err := src.conn.WriteToUDP([]byte("end"), victim.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	got := 0
	_ = victim.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		n, err := victim.Read(buf)
		if err != nil {
			t.Fatalf("after %d packets: %v", got, err)
		}
		if string(buf[:n]) == "end" {
			break
		}
		got++
	}
	if got > 5 {
		t.Errorf("a recv_addr that never answered got %d packets, want at most 5", got)
	}
}

// TestSlowBodyIsCut: a body sent at a few bytes a second is cut at
// Config.BodyTimeout with a 408, long before it would have ended; an
// event stream, which has no body, outlives that timeout.
func TestSlowBodyIsCut(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ts := startServer(t, "", func(c *Config) { c.BodyTimeout = timeout; c.EventHeartbeat = 50 * time.Millisecond })
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)

	// The event stream, opened first, must still flow after the slow body
	// is cut.
	resp, err := http.Get(ts.base + "/v1/rooms/r/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := bufio.NewReader(resp.Body)

	// Twenty slow bodies at once, each 100 s long at 10 bytes a second.
	const slow, length = 20, 1000
	start := time.Now()
	statuses := make(chan string, slow)
	for range slow {
		conn, err := net.Dial("tcp", ts.s.HTTPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		go func() {
			if _, err := fmt.Fprintf(conn, "POST /v1/rooms HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n{", length); err != nil {
				statuses <- err.Error()
				return
			}
			answered := make(chan string, 1)
			go func() {
				line, _ := bufio.NewReader(conn).ReadString('\n')
				answered <- line
			}()
			trickle := time.NewTicker(100 * time.Millisecond)
			defer trickle.Stop()
			for {
				select {
				case status := <-answered:
					statuses <- status
					return
				case <-trickle.C:
					_, _ = conn.Write([]byte(" "))
				}
			}
		}()
	}
	for range slow {
		select {
		case status := <-statuses:
			if !strings.HasPrefix(status, "HTTP/1.1 408") {
				t.Fatalf("a slow body got %q, want 408", status)
			}
		case <-time.After(60 * time.Second): // bounds a failure only
			t.Fatal("a slow body was still being read after 60 s")
		}
	}

	// The event stream is still alive, well past the body timeout.
	for time.Since(start) < 4*timeout {
		if _, err := events.ReadString('\n'); err != nil {
			t.Fatalf("event stream cut after %v: %v", time.Since(start), err)
		}
	}
	if line, err := events.ReadString('\n'); err != nil {
		t.Fatalf("event stream cut after %v: %v (%q)", time.Since(start), err, line)
	}
	// A body sent at once is still read.
	ts.mustCall("POST", "/v1/rooms", `{"id":"s"}`, 201, nil)
}

// TestAdmissionCaps: with caps set, a room or join past a cap gets a clear
// status (503, 409, or 429 with Retry-After) and is counted by reason.
func TestAdmissionCaps(t *testing.T) {
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	ts := startServer(t, "", func(c *Config) {
		c.Now = clock.Now
		c.MaxRooms, c.MaxRoomParticipants = 1, 3
		c.JoinRate, c.JoinBurst = 1, 5
	})
	ts.mustCall("POST", "/v1/rooms", `{"id":"r","max_speakers":1}`, 201, nil)
	ts.mustCall("POST", "/v1/rooms", `{"id":"s"}`, 503, nil)
	join := func(id, role string, want int) *http.Response {
		t.Helper()
		body := fmt.Sprintf(`{"id":%q,"role":%q,"rtp":{"addr":%q}}`, id, role, newUDPClient(t, nil).addr())
		resp, err := http.Post(ts.base+"/v1/rooms/r/participants", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("join %s as %s: status %d, want %d", id, role, resp.StatusCode, want)
		}
		return resp
	}
	join("a", "speaker", 201)
	join("b", "speaker", 409) // the stage holds one
	join("b", "listener", 201)
	join("c", "listener", 201)
	join("d", "listener", 409) // the room holds three
	resp := join("e", "listener", 429)
	if got := resp.Header.Get("Retry-After"); got != "1" {
		t.Errorf("Retry-After %q, want 1 (one join a second)", got)
	}
	ts.mustCall("DELETE", "/v1/rooms/r/participants/c", "", 204, nil)
	clock.Advance(time.Second)
	join("e", "listener", 201)
	for reason, want := range map[string]string{"rooms": "1", "stage_full": "1", "room_full": "1", "join_rate": "1", "overload": "0"} {
		if got := metric(t, ts, `handsup_admission_refused_total{reason="`+reason+`"}`); got != want {
			t.Errorf("refusals for %s: %s, want %s", reason, got, want)
		}
	}
}

// TestAdmissionOverload: with MaxTickLoad below what any tick costs, new
// rooms are refused with 503 and a Retry-After once the engine has ticked.
func TestAdmissionOverload(t *testing.T) {
	ts := startServer(t, "", func(c *Config) { c.MaxTickLoad = 1e-9 })
	deadline := time.Now().Add(30 * time.Second) // bounds a failure only
	for {
		resp, err := http.Post(ts.base+"/v1/rooms", "application/json", strings.NewReader(`{"id":"r"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 503 {
			if resp.Header.Get("Retry-After") == "" {
				t.Error("503 for overload without Retry-After")
			}
			break
		}
		if resp.StatusCode != 201 || time.Now().After(deadline) {
			t.Fatalf("status %d, want 503 once the engine ticks", resp.StatusCode)
		}
		ts.mustCall("DELETE", "/v1/rooms/r", "", 204, nil)
		time.Sleep(20 * time.Millisecond)
	}
	if got := metric(t, ts, `handsup_admission_refused_total{reason="overload"}`); got != "1" {
		t.Errorf("overload refusals %s, want 1", got)
	}
}

// TestInvitesBoundAndUsedOnce: an invite joins once by default (max_uses
// sets more); a failed join does not spend it; an invite or token issued
// for a room does not open a room created again with the same id.
func TestInvitesBoundAndUsedOnce(t *testing.T) {
	ts := startServer(t, adminTok)
	ts.mustCall("POST", "/v1/rooms", `{"id":"vip","invite_only":true}`, 201, nil)
	var once, twice, tok map[string]any
	ts.mustCall("POST", "/v1/rooms/vip/invites", `{"id":"lena","role":"listener"}`, 201, &once)
	ts.mustCall("POST", "/v1/rooms/vip/invites", `{"id":"max","role":"listener","max_uses":2}`, 201, &twice)
	ts.mustCall("POST", "/v1/rooms/vip/tokens", `{"identity":"ona","grants":["listen"]}`, 201, &tok)
	if once["max_uses"] != 1.0 || twice["max_uses"] != 2.0 {
		t.Errorf("max_uses in the answers: %v and %v, want 1 and 2", once["max_uses"], twice["max_uses"])
	}
	as := func(bearer any) *testServer {
		c := *ts
		c.token = bearer.(string)
		return &c
	}
	join := func(id string, bearer any, addr string) int {
		if addr == "" {
			addr = newUDPClient(t, nil).addr()
		}
		return as(bearer).call("POST", "/v1/rooms/vip/participants",
			fmt.Sprintf(`{"id":%q,"role":"listener","rtp":{"addr":%q}}`, id, addr), nil)
	}
	if got := join("lena", once["invite"], "0.0.0.0:1"); got != 400 {
		t.Fatalf("a join with a bad address: %d, want 400", got)
	}
	if got := join("lena", once["invite"], ""); got != 201 {
		t.Fatalf("the invite's first join (after a failed one): %d, want 201", got)
	}
	as(once["invite"]).mustCall("DELETE", "/v1/rooms/vip/participants/lena", "", 204, nil)
	if got := join("lena", once["invite"], ""); got != 403 {
		t.Errorf("the invite's second join: %d, want 403", got)
	}
	for i, want := range []int{201, 204, 201, 204, 403} {
		var got int
		if want == 204 {
			got = as(twice["invite"]).call("DELETE", "/v1/rooms/vip/participants/max", "", nil)
		} else {
			got = join("max", twice["invite"], "")
		}
		if got != want {
			t.Errorf("max_uses 2, step %d: %d, want %d", i, got, want)
		}
	}

	// The room is deleted and created again: what was issued for the old
	// one is refused, even for reading the room's events.
	ts.mustCall("DELETE", "/v1/rooms/vip", "", 204, nil)
	ts.mustCall("POST", "/v1/rooms", `{"id":"vip","invite_only":true}`, 201, nil)
	if got := join("ona", tok["token"], ""); got != 401 {
		t.Errorf("a token of the deleted room: %d, want 401", got)
	}
	if got := as(tok["token"]).call("GET", "/v1/rooms/vip/hands", "", nil); got != 401 {
		t.Errorf("a token of the deleted room reading: %d, want 401", got)
	}
	var fresh map[string]any
	ts.mustCall("POST", "/v1/rooms/vip/tokens", `{"identity":"ona","grants":["listen"]}`, 201, &fresh)
	if got := join("ona", fresh["token"], ""); got != 201 {
		t.Errorf("a token of the new room: %d, want 201", got)
	}
}

// TestEventStreamCaps: past a room's or the server's cap of event streams,
// a new stream gets 503 with Retry-After; a closed stream makes room.
func TestEventStreamCaps(t *testing.T) {
	ts := startServer(t, "", func(c *Config) { c.MaxEventStreams, c.MaxRoomEventStreams = 2, 1 })
	for _, id := range []string{"a", "b", "c"} {
		ts.mustCall("POST", "/v1/rooms", fmt.Sprintf(`{"id":%q}`, id), 201, nil)
	}
	open := func(room string, want int) *http.Response {
		t.Helper()
		resp, err := http.Get(ts.base + "/v1/rooms/" + room + "/events")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != want {
			resp.Body.Close()
			t.Fatalf("stream of %s: status %d, want %d", room, resp.StatusCode, want)
		}
		if want != 200 {
			resp.Body.Close()
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("%d without Retry-After", want)
			}
		}
		return resp
	}
	a := open("a", 200)
	open("a", 503) // the room's one
	b := open("b", 200)
	open("c", 503) // the server's two
	b.Body.Close()
	for deadline := time.Now().Add(20 * time.Second); ts.s.events.subscribers.Load() > 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) { // bounds a failure only
			t.Fatal("a closed stream is still counted after 20 s")
		}
	}
	open("c", 200).Body.Close()
	a.Body.Close()
	if got := metric(t, ts, `handsup_admission_refused_total{reason="event_streams"}`); got != "2" {
		t.Errorf("event stream refusals %s, want 2", got)
	}
}

// TestConnectionCap: past MaxConns open connections, a new one gets 503
// at once and is closed; one closed makes room again.
func TestConnectionCap(t *testing.T) {
	ts := startServer(t, "", func(c *Config) { c.MaxConns = 3 })
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", ts.s.HTTPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	// The three are accepted (a request on each answers).
	for _, c := range held {
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200") {
			t.Fatalf("a held connection: %q %v", line, err)
		}
	}
	resp, err := http.Get(ts.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a fourth connection: status %d, Retry-After %q; want 503 with one", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	held[0].Close()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		c, err := net.Dial("tcp", ts.s.HTTPAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.HasPrefix(line, "HTTP/1.1 200") {
			break
		}
		if time.Now().After(deadline) { // bounds a failure only
			t.Fatalf("after a held connection closed: %q", line)
		}
	}
	mfs, err := ts.s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counted := false
	for _, mf := range mfs {
		if mf.GetName() == "handsup_http_connections_refused_total" {
			counted = mf.GetMetric()[0].GetCounter().GetValue() >= 1
		}
	}
	if !counted {
		t.Error("the refusal is not counted in handsup_http_connections_refused_total")
	}
}
