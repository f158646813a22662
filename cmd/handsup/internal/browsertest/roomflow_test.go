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

// sseEvent is one event of the stream as a third client reads it.
type sseEvent struct {
	ID          string `json:"-"`  // the event's id line ("" without one)
	DataID      uint64 `json:"id"` // the id in its data, which must agree
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
			if line == "" {
				id = "" // an event ends: the next has its own id line, or none
			} else if v, ok := strings.CutPrefix(line, "id:"); ok {
				id = strings.TrimSpace(v)
			} else if v, ok := strings.CutPrefix(line, "data:"); ok {
				ev := sseEvent{ID: id}
				if err := json.Unmarshal([]byte(strings.TrimSpace(v)), &ev); err != nil {
					e.t.Errorf("event data %s: %v", v, err)
				} else {
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
// in that order, with increasing ids; the moderator then removes lena,
// whose page says so. With -update-screenshot the moderator's page, on a
// phone's screen, is written to docs/web-client.png.
func TestBrowserRoomFlow(t *testing.T) {
	e := start(t)
	e.api("POST", "/v1/rooms", `{"id":"r"}`, adminToken, 201)
	events := e.follow(e.token("observer", "listen"))
	e.ffmpegSpeaker("host", ffmpegTone)
	ffl := e.ffmpegListener("ffl")
	lena := e.open("lena", e.token("lena", "listen", "speak"), "listener")
	modToken := e.token("mo", "listen", "moderate")
	mod := e.open("moderator", modToken, "listener")
	if *updateScreenshot {
		mod.do(chromedp.EmulateViewport(390, 760, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	}

	lena.click("#hand")
	mod.poll(`document.querySelector('#hands li')?.dataset.id === 'lena'`)
	// The page's queue is the server's: GET .../hands with the
	// moderator's token, in raise order.
	var queue struct{ Hands []struct{ ID, Role string } }
	_ = json.Unmarshal(e.api("GET", "/v1/rooms/r/hands", "", modToken, 200), &queue)
	if len(queue.Hands) != 1 || queue.Hands[0].ID != "lena" || queue.Hands[0].Role != "listener" {
		t.Errorf("GET /hands: %+v, want lena, a listener, alone", queue.Hands)
	}
	// Both pages follow the room with an EventSource (the events cookie),
	// which began with a snapshot with an id.
	for _, p := range []*page{lena, mod} {
		var via string
		var first struct{ Type, ID string }
		p.eval(`handsupTest.S.events`, &via)
		p.eval(`handsupTest.events[0]`, &first)
		if via != "eventsource" || first.Type != "snapshot" || first.ID == "" {
			t.Errorf("%s follows the room by %q, first event %+v; want an EventSource starting with a snapshot with an id", p.name, via, first)
		}
	}
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
		if _, err := fmt.Sscan(ev.ID, &id); err != nil || id <= last || id != ev.DataID {
			t.Errorf("event %s has id %q (%d in its data) after %d", ev.Type, ev.ID, ev.DataID, last)
		}
		last = id
	}
	t.Logf("observer: %+v", seen)

	// Removed by the moderator, lena's page says so (the left event's
	// reason is kicked).
	mod.click(`#stage li[data-id="lena"] button:last-child`) // Remove
	lena.poll(`document.getElementById('status').textContent.includes('removed you') && !document.getElementById('enter').hidden`)
}
