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
