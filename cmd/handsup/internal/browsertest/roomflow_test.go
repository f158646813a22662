package browsertest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/handsup-audio/handsup/bench/signal"
)

// needs skips the test unless the server's OpenAPI document names every
// one of parts: the room flow needs participant tokens with self-service
// and the resumable event stream.
func (e *env) needs(parts ...string) {
	e.t.Helper()
	doc := string(e.api("GET", "/v1/openapi.json", "", "", 200))
	for _, p := range parts {
		if !strings.Contains(doc, p) {
			e.t.Skipf("the server has no %s yet: the room flow waits for participant tokens (self-service, moderate grant) and the resumable event stream", p)
		}
	}
}

// token mints a participant token for identity in room r.
func (e *env) token(identity string, grants ...string) string {
	g, _ := json.Marshal(grants)
	var v struct{ Token string }
	_ = json.Unmarshal(e.api("POST", "/v1/rooms/r/tokens", fmt.Sprintf(`{"identity":%q,"grants":%s}`, identity, g), adminToken, 201), &v)
	return v.Token
}

// sseEvent is one event of the stream as a third client reads it.
type sseEvent struct {
	ID          string
	Type        string `json:"type"`
	Participant string `json:"participant"`
}

// follow reads room r's event stream with token until the test ends.
func (e *env) follow(token string) func() []sseEvent {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.base+"/v1/rooms/r/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		e.t.Fatalf("events: %d", resp.StatusCode)
	}
	var mu sync.Mutex
	var got []sseEvent
	go func() {
		defer resp.Body.Close()
		lines := bufio.NewScanner(resp.Body)
		var id string
		for lines.Scan() {
			line := lines.Text()
			if v, ok := strings.CutPrefix(line, "id:"); ok {
				id = strings.TrimSpace(v)
			} else if v, ok := strings.CutPrefix(line, "data:"); ok {
				ev := sseEvent{ID: id}
				if json.Unmarshal([]byte(strings.TrimSpace(v)), &ev) == nil {
					mu.Lock()
					got = append(got, ev)
					mu.Unlock()
				}
			}
		}
	}()
	return func() []sseEvent {
		mu.Lock()
		defer mu.Unlock()
		return append([]sseEvent(nil), got...)
	}
}

// TestBrowserRoomFlow: the room through the page. A Chromium listener
// raises its hand; a Chromium moderator sees it first in the queue and
// promotes it; the promoted page publishes its microphone, which an
// ffmpeg listener hears; the moderator mutes it. A third client's event
// stream shows hand_raised, role_changed, hand_lowered and muted for it,
// in that order, with increasing ids. With -update-screenshot the
// moderator's page, on a phone's screen, is written to
// docs/web-client.png.
func TestBrowserRoomFlow(t *testing.T) {
	e := start(t)
	e.needs("/v1/rooms/{room}/tokens", "/v1/rooms/{room}/events/cookie", "Last-Event-ID")
	e.api("POST", "/v1/rooms", `{"id":"r"}`, adminToken, 201)
	events := e.follow(e.token("observer", "listen"))
	e.ffmpegSpeaker("host", ffmpegTone)
	ffl := e.ffmpegListener("ffl")
	lena := e.open("lena", e.token("lena", "listen", "speak"), "listener")
	mod := e.open("moderator", e.token("mo", "listen", "moderate"), "listener")
	if *updateScreenshot {
		mod.do(chromedp.EmulateViewport(390, 760, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	}

	lena.click("#hand")
	mod.poll(`document.querySelector('#hands li')?.dataset.id === 'lena'`)
	mod.click(`#hands li[data-id="lena"] button`) // Invite to speak
	lena.poll(`handsupTest.S.role === 'speaker' && handsupTest.S.publishing && handsupTest.S.pc.currentRemoteDescription.sdp.includes('a=sendrecv')`)
	e.waitUplink("lena")

	pcm := ffl.record(4*time.Second, nil)
	if len(pcm) < 3*48000 {
		t.Fatalf("the ffmpeg listener decoded %d samples", len(pcm))
	}
	db := signal.ToneLevelDB(pcm[len(pcm)-3*48000:], micTone)
	t.Logf("the ffmpeg listener hears the promoted page's %v Hz at %.1f dB", micTone, db)
	if db < -30 {
		t.Errorf("the ffmpeg listener hears the promoted page at %.1f dB, want above -30", db)
	}
	if *updateScreenshot {
		e.api("POST", "/v1/rooms/r/participants/ffl/hand", "", adminToken, 200) // someone in the queue
		mod.poll(`document.querySelector('#stage li.speaking') && document.querySelector('#hands li')`)
		shot, err := chromedp.Run(mod.bounded(), chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "..", "..", "..", "docs", "web-client.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	mod.click(`#stage li[data-id="lena"] button`) // Mute
	lena.poll(`handsupTest.S.muted === true`)

	want := []string{"hand_raised", "role_changed", "hand_lowered", "muted"}
	var seen []sseEvent
	for deadline := time.Now().Add(wait); ; time.Sleep(50 * time.Millisecond) {
		seen = seen[:0]
		for _, ev := range events() {
			if ev.Participant == "lena" && ev.Type != "joined" {
				seen = append(seen, ev)
			}
		}
		if len(seen) >= len(want) || time.Now().After(deadline) {
			break
		}
	}
	var types []string
	for _, ev := range seen {
		types = append(types, ev.Type)
	}
	if strings.Join(types, ",") != strings.Join(want, ",") {
		t.Fatalf("the observer saw lena's events %v, want %v", types, want)
	}
	var last uint64
	for _, ev := range seen {
		var id uint64
		if _, err := fmt.Sscan(ev.ID, &id); err != nil || id <= last {
			t.Errorf("event %s has id %q after %d", ev.Type, ev.ID, last)
		}
		last = id
	}
	t.Logf("observer: %+v", seen)
}
