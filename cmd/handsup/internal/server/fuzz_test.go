package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzJoin posts arbitrary bodies to a room's participants endpoint: the
// answer is never a 5xx, always JSON, and a join that succeeds names a
// participant the room has.
func FuzzJoin(f *testing.F) {
	s, err := New(Config{HTTPAddr: "127.0.0.1:0", RTPAddr: "127.0.0.1:0", JoinRate: 1e9, JoinBurst: 1 << 30,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.closeAll(); _ = s.httpLn.Close() })
	if _, err := s.createRoom(createRoomRequest{ID: "r"}); err != nil {
		f.Fatal(err)
	}
	h := s.routes()
	for _, seed := range []string{
		`{"id":"a","role":"speaker","rtp":{"addr":"127.0.0.1:6000","recv_addr":"127.0.0.1:6002"}}`,
		`{"id":"b","role":"listener","rtp":{"addr":"127.0.0.1:7000","payload_type":100,"red_payload_type":101,"audio_level_ext_id":1}}`,
		`{"id":"c","role":"listener"}`,
		`{"id":"d","role":"moderator","rtp":{"addr":"[::1]:7000"}}`,
		`{"id":"e","role":"listener","rtp":{"addr":"255.255.255.255:1"}}`,
		`{"id":"f","role":"listener","rtp":{"recv_addr":"127.0.0.1:1"}}`,
		`{"id":"g","role":"singer"}`,
		`{"id":"h","role":"listener","extra":1}`,
		`{"id":"i"}{"id":"j"}`,
		`[[[[[[[[[[[[[[[[[[[[[[[[`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/v1/rooms/r/participants", strings.NewReader(string(body)))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		var v map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
			t.Fatalf("status %d, answer not JSON: %q", rec.Code, rec.Body)
		}
		if rec.Code != http.StatusCreated {
			return
		}
		id, _ := v["id"].(string)
		rm, _ := s.room("r")
		if _, ok := rm.Participant(id); !ok {
			t.Fatalf("joined %q, not in the room", id)
		}
		if err := rm.Kick(id, "left"); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzAPI sends arbitrary requests (a method, a path under /v1/, a body)
// to the API as the admin: the answer is never a 5xx and always JSON (or
// an empty 204, or net/http's redirect to a cleaned path). Event streams, which stay open, are left out.
func FuzzAPI(f *testing.F) {
	s, err := New(Config{HTTPAddr: "127.0.0.1:0", RTPAddr: "127.0.0.1:0", JoinRate: 1e9, JoinBurst: 1 << 30,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.closeAll(); _ = s.httpLn.Close() })
	h := s.routes()
	for _, seed := range []struct {
		method uint8
		path   string
		body   string
	}{
		{1, "/v1/rooms", `{"id":"r2","invite_only":true,"max_speakers":3,"top_n":2}`},
		{0, "/v1/rooms/r", ``},
		{4, "/v1/rooms/r/participants/a", `{"role":"speaker","muted":true,"gain_db":-6}`},
		{1, "/v1/rooms/r/participants/a/hand", ``},
		{1, "/v1/rooms/r/invites", `{"id":"x","role":"listener","ttl_seconds":60,"max_uses":2}`},
		{1, "/v1/rooms/r/tokens", `{"identity":"x","grants":["listen","bogus"],"max_uses":-1}`},
		{3, "/v1/tokens/abc", ``},
		{3, "/v1/rooms/r", ``},
		{1, "/v1/rooms/r/whip?id=a", "v=0\r\n"},
		{2, "/v1/rooms/%zz", `{}`},
	} {
		f.Add(seed.method, seed.path, []byte(seed.body))
	}
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH"}
	f.Fuzz(func(t *testing.T, m uint8, path string, body []byte) {
		method := methods[int(m)%len(methods)]
		if !strings.HasPrefix(path, "/v1/") || strings.Contains(path, "/events") {
			return
		}
		if _, err := s.room("r"); err != nil {
			if _, err := s.createRoom(createRoomRequest{ID: "r"}); err != nil {
				t.Fatal(err)
			}
		}
		req, err := http.NewRequest(method, "http://handsup"+path, strings.NewReader(string(body)))
		if err != nil {
			return // not a request a client could send
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s: status %d: %s", method, path, rec.Code, rec.Body)
		}
		if rec.Code >= 300 && rec.Code < 400 && rec.Header().Get("Location") != "" {
			return // net/http's redirect to the cleaned path
		}
		if rec.Body.Len() == 0 {
			if rec.Code != http.StatusNoContent {
				t.Fatalf("%s %s: status %d with no body", method, path, rec.Code)
			}
			return
		}
		if ct := rec.Header().Get("Content-Type"); strings.HasPrefix(ct, "application/json") && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: status %d, answer not JSON: %q", method, path, rec.Code, rec.Body)
		}
	})
}
