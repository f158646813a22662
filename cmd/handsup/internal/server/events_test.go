package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// sseEvent is one Server-Sent Event, or one comment line.
type sseEvent struct {
	ID      uint64
	Type    string
	Data    string
	Comment string // set for a comment line, which carries nothing else
}

// sseStream reads a room's event stream as an EventSource does.
type sseStream struct {
	t      *testing.T
	resp   *http.Response
	events chan sseEvent // closed when the stream ends
}

// openEvents opens room's event stream; lastID, when not empty, goes in
// the Last-Event-ID header.
func (ts *testServer) openEvents(path, lastID string) *sseStream {
	ts.t.Helper()
	req, err := http.NewRequest("GET", ts.base+path, nil)
	if err != nil {
		ts.t.Fatal(err)
	}
	if ts.token != "" {
		req.Header.Set("Authorization", "Bearer "+ts.token)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	return readEvents(ts.t, resp)
}

// readEvents reads an event stream's response.
func readEvents(t *testing.T, resp *http.Response) *sseStream {
	t.Helper()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		resp.Body.Close()
		t.Fatalf("event stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	s := &sseStream{t: t, resp: resp, events: make(chan sseEvent, 1<<16)}
	t.Cleanup(s.kill)
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var e sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.Type != "" {
					s.events <- e
				}
				e = sseEvent{}
			case strings.HasPrefix(line, ":"):
				s.events <- sseEvent{Comment: strings.TrimSpace(line[1:])}
			case strings.HasPrefix(line, "id: "):
				e.ID, _ = strconv.ParseUint(line[4:], 10, 64)
			case strings.HasPrefix(line, "event: "):
				e.Type = line[7:]
			case strings.HasPrefix(line, "data: "):
				e.Data = line[6:]
			}
		}
	}()
	return s
}

// kill drops the connection, as a client that dies does.
func (s *sseStream) kill() { s.resp.Body.Close() }

// next is the next event, skipping comments and active_speakers (which a
// hand-stepped test cannot predict); ok is false when the stream ended.
func (s *sseStream) next() (e sseEvent, ok bool) {
	s.t.Helper()
	for {
		select {
		case e, ok = <-s.events:
			if !ok || (e.Comment == "" && e.Type != "active_speakers") {
				return e, ok
			}
		case <-time.After(20 * time.Second):
			s.t.Fatal("no event within 20 s")
		}
	}
}

// expect reads the next events and checks their types, and that their ids
// follow on from after, one by one; it returns the last id.
func (s *sseStream) expect(after uint64, types ...string) uint64 {
	s.t.Helper()
	for _, typ := range types {
		e, ok := s.next()
		if !ok {
			s.t.Fatalf("stream ended; want %s", typ)
		}
		if e.Type != typ || e.ID != after+1 {
			s.t.Fatalf("event %s id %d (%s), want %s id %d", e.Type, e.ID, e.Data, typ, after+1)
		}
		after = e.ID
	}
	return after
}

// snapshot reads the next event, which must be a snapshot.
func (s *sseStream) snapshot() snapshotView {
	s.t.Helper()
	e, ok := s.next()
	if !ok || e.Type != "snapshot" {
		s.t.Fatalf("first event %q (%s), want a snapshot", e.Type, e.Data)
	}
	var v snapshotView
	if err := json.Unmarshal([]byte(e.Data), &v); err != nil {
		s.t.Fatal(err)
	}
	if v.ID != e.ID {
		s.t.Errorf("snapshot's id line %d, data %d", e.ID, v.ID)
	}
	return v
}

// TestEventsResumeAfterKill: a client killed and reconnected with
// Last-Event-ID (header or query parameter) gets every event it missed,
// in order, once, then the live ones.
func TestEventsResumeAfterKill(t *testing.T) {
	ts := startServer(t, adminTok)
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	ts.mustCall("POST", "/v1/rooms/r/participants", `{"id":"x","role":"listener"}`, 201, nil)
	hand := func(up bool) {
		method := "DELETE"
		if up {
			method = "POST"
		}
		ts.mustCall(method, "/v1/rooms/r/participants/x/hand", "", 200, nil)
	}
	s1 := ts.openEvents("/v1/rooms/r/events", "")
	id := s1.snapshot().ID
	hand(true)
	hand(false)
	seen := s1.expect(id, "hand_raised", "hand_lowered")
	s1.kill()
	hand(true)
	hand(false)
	hand(true)

	s2 := ts.openEvents("/v1/rooms/r/events", fmt.Sprint(seen))
	last := s2.expect(seen, "hand_raised", "hand_lowered", "hand_raised")
	hand(false)
	last = s2.expect(last, "hand_lowered")

	// The query parameter, for clients that cannot set headers.
	s3 := ts.openEvents(fmt.Sprintf("/v1/rooms/r/events?last_event_id=%d", seen+2), "")
	s3.expect(seen+2, "hand_raised", "hand_lowered")
	ts.mustCall("DELETE", "/v1/rooms/r/participants/x", "", 204, nil)
	s3.expect(last, "left")
	s2.expect(last, "left")
}

// TestEventsSnapshot: a stream that cannot resume (no id, an id older than
// the backlog, an unknown id, garbage) starts with a snapshot of the room.
func TestEventsSnapshot(t *testing.T) {
	ts := startServer(t, "", func(c *Config) { c.EventBacklog = 4 })
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	for _, j := range []string{`{"id":"a","role":"speaker"}`, `{"id":"x","role":"listener"}`, `{"id":"y","role":"listener"}`} {
		ts.mustCall("POST", "/v1/rooms/r/participants", j, 201, nil)
	}
	ts.mustCall("POST", "/v1/rooms/r/participants/y/hand", "", 200, nil)
	ts.mustCall("POST", "/v1/rooms/r/participants/x/hand", "", 200, nil)
	ts.mustCall("PATCH", "/v1/rooms/r/participants/a", `{"muted":true}`, 200, nil)
	// Six events; the backlog holds the last four.
	snap := ts.openEvents("/v1/rooms/r/events", "").snapshot()
	got, _ := json.Marshal(snap)
	want := fmt.Sprintf(`{"type":"snapshot","id":%d,"room":"r","participants":3,"listeners":2,`+
		`"stage":[{"id":"a","role":"speaker","muted":true}],"hands":["y","x"],"speakers":[]}`, snap.ID)
	if string(got) != want {
		t.Errorf("snapshot\n%s\nwant\n%s", got, want)
	}
	last := snap.ID
	for _, id := range []string{fmt.Sprint(last - 5), fmt.Sprint(last + 1), "1", "yesterday"} {
		if s := ts.openEvents("/v1/rooms/r/events", id).snapshot(); s.ID != last {
			t.Errorf("Last-Event-ID %s: snapshot id %d, want %d", id, s.ID, last)
		}
	}
	// The oldest event kept, and the latest: resumable.
	ts.openEvents("/v1/rooms/r/events", fmt.Sprint(last-4)).expect(last-4, "joined", "hand_raised", "hand_raised", "muted")
	s := ts.openEvents("/v1/rooms/r/events", fmt.Sprint(last))
	ts.mustCall("PATCH", "/v1/rooms/r/participants/a", `{"muted":false}`, 200, nil)
	s.expect(last, "muted")
}

// TestEventOrder: raise, promote, mute and kick, as a third client's
// stream shows them: the promotion lowers the hand with its own event, and
// the kicked participant leaves with reason "kicked". The room lists the
// hand queue in raise order.
func TestEventOrder(t *testing.T) {
	ts := startServer(t, "")
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	for _, id := range []string{"lena", "max", "noor"} {
		ts.mustCall("POST", "/v1/rooms/r/participants", `{"id":"`+id+`","role":"listener"}`, 201, nil)
	}
	s := ts.openEvents("/v1/rooms/r/events", "")
	id := s.snapshot().ID
	for _, p := range []string{"noor", "lena", "max"} {
		ts.mustCall("POST", "/v1/rooms/r/participants/"+p+"/hand", "", 200, nil)
	}
	var room roomView
	ts.mustCall("GET", "/v1/rooms/r", "", 200, &room)
	if fmt.Sprint(room.Hands) != "[noor lena max]" {
		t.Errorf("hand queue %v, want [noor lena max]", room.Hands)
	}
	var lena participantView
	ts.mustCall("PATCH", "/v1/rooms/r/participants/lena", `{"role":"speaker"}`, 200, &lena)
	if lena.HandRaised {
		t.Error("lena's hand is still up after her promotion")
	}
	ts.mustCall("PATCH", "/v1/rooms/r/participants/lena", `{"muted":true}`, 200, nil)
	ts.mustCall("DELETE", "/v1/rooms/r/participants/max", "", 204, nil)
	id = s.expect(id, "hand_raised", "hand_raised", "hand_raised", "role_changed", "hand_lowered", "muted")
	if e, _ := s.next(); e.Type != "left" || e.ID != id+1 || !strings.Contains(e.Data, `"participant":"max","reason":"kicked"`) {
		t.Errorf("after the kick: %s id %d %s, want left id %d, max kicked", e.Type, e.ID, e.Data, id+1)
	}
	ts.mustCall("GET", "/v1/rooms/r", "", 200, &room)
	if fmt.Sprint(room.Hands) != "[noor]" {
		t.Errorf("hand queue %v, want [noor]", room.Hands)
	}
	ts.mustCall("DELETE", "/v1/rooms/r", "", 204, nil)
	var reasons []string
	for {
		e, ok := s.next()
		if !ok {
			break
		}
		var v eventView
		_ = json.Unmarshal([]byte(e.Data), &v)
		if e.Type == "left" || e.Type == "room_closed" {
			reasons = append(reasons, e.Type+":"+v.Participant+":"+v.Reason)
		}
	}
	if fmt.Sprint(reasons) != "[left:lena:room_closed left:noor:room_closed room_closed::]" &&
		fmt.Sprint(reasons) != "[left:noor:room_closed left:lena:room_closed room_closed::]" {
		t.Errorf("closing the room: %v", reasons)
	}
}

// TestEventsHeartbeat: an idle stream carries a comment line every
// Config.EventHeartbeat.
func TestEventsHeartbeat(t *testing.T) {
	ts := startServer(t, "", func(c *Config) { c.EventHeartbeat = 50 * time.Millisecond })
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	s := ts.openEvents("/v1/rooms/r/events", "")
	for pings := 0; pings < 3; {
		select {
		case e, ok := <-s.events:
			if !ok {
				t.Fatal("the stream ended")
			}
			if e.Comment == "ping" {
				pings++
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%d pings in 20 s, want 3", pings)
		}
	}
}

// TestSlowEventSubscriber: a client that stops reading while more events
// than the backlog holds go by is cut off, instead of silently missing
// events; the cut and the events it missed are counted, and the client,
// reconnecting, gets a snapshot.
func TestSlowEventSubscriber(t *testing.T) {
	ts := startServer(t, "")
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	ts.mustCall("POST", "/v1/rooms/r/participants", `{"id":"x","role":"listener"}`, 201, nil)
	rm, _ := ts.s.room("r")
	x, _ := rm.Participant("x")

	// A client with a small receive buffer that reads nothing for now.
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	conn, err := d.Dial("tcp", ts.s.HTTPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /v1/rooms/r/events HTTP/1.1\r\nHost: handsup\r\n\r\n")
	if !poll(func() bool { return ts.s.events.subscribers.Load() == 1 }) {
		t.Fatal("the stream did not start")
	}
	// 300,000 events of about 130 bytes: far more than the server's socket
	// buffer (at most 4 MB, net.ipv4.tcp_wmem) and the backlog together.
	for i := range 300_000 {
		if i%2 == 0 {
			x.RaiseHand()
		} else {
			x.LowerHand()
		}
	}

	// Reading now: the events that went out, then the end of the stream.
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second)) // bounds a failure
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := readEvents(t, resp)
	var first, last uint64
	var cut bool
	for e := range s.events {
		if e.Type == "snapshot" {
			first = e.ID
		}
		if e.ID != 0 {
			last = e.ID
		}
		cut = cut || strings.HasPrefix(e.Comment, "too slow")
	}
	if !cut {
		t.Fatal("the stream ended without saying why")
	}
	if got := metric(t, ts, "handsup_event_streams_cut_total"); got != "1" {
		t.Errorf("handsup_event_streams_cut_total %s, want 1", got)
	}
	dropped := metric(t, ts, "handsup_events_dropped_total")
	t.Logf("the stream sent %d events before it was cut; %s dropped", last-first, dropped)
	if dropped == "0" {
		t.Error("handsup_events_dropped_total is 0")
	}
	snap := ts.openEvents("/v1/rooms/r/events", fmt.Sprint(last)).snapshot()
	if len(snap.Hands) != 0 { // the last of 300,000 toggles lowered the hand
		t.Errorf("snapshot hands %v, want none", snap.Hands)
	}
	if got := metric(t, ts, "handsup_event_subscribers"); got != "1" {
		t.Errorf("handsup_event_subscribers %s, want 1", got)
	}
}

// metric is the value of an unlabelled metric in /metrics.
func metric(t *testing.T, ts *testServer, name string) string {
	t.Helper()
	resp, err := http.Get(ts.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return ""
}

// subscribe returns a channel of the room's live events, closed when the
// room closes or cancel is called.
func (h *hub) subscribe() (events chan eventView, cancel func()) {
	sub, cursor, err := h.follow()
	if err != nil {
		panic(err) // the tests' hubs have no limit in reach
	}
	events = make(chan eventView, 1024)
	done := make(chan struct{})
	go func() {
		defer close(events)
		for {
			select {
			case <-done:
				return
			case <-sub.wake:
			}
			got, ok, _, closed := h.since(cursor, nil)
			for _, e := range got {
				select {
				case events <- e:
					cursor = e.ID
				case <-done:
					return
				}
			}
			if !ok || closed {
				return
			}
		}
	}()
	var once sync.Once
	return events, func() {
		once.Do(func() {
			close(done)
			h.unfollow(sub)
		})
	}
}
