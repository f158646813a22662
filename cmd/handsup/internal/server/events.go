package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handsup-audio/handsup/engine"
)

// eventView is one Server-Sent Event's data.
type eventView struct {
	Type        string         `json:"type"`
	Room        string         `json:"room"`
	Participant string         `json:"participant,omitempty"`
	Role        string         `json:"role,omitempty"`
	Muted       *bool          `json:"muted,omitempty"`
	HandRaised  *bool          `json:"hand_raised,omitempty"`
	Reason      string         `json:"reason,omitempty"`
	Speakers    []speakerLevel `json:"speakers,omitempty"`
}

type speakerLevel struct {
	ID    string `json:"id"`
	Level uint8  `json:"level"` // RFC 6464: 0 loud .. 127 silent
}

func eventFrom(e engine.Event) eventView {
	v := eventView{Room: e.Room, Participant: e.Participant}
	switch e.Kind {
	case engine.EventJoined:
		v.Type, v.Role = "joined", e.Role.String()
	case engine.EventLeft:
		v.Type, v.Reason = "left", e.Reason
	case engine.EventRole:
		v.Type, v.Role = "role_changed", e.Role.String()
	case engine.EventMuted:
		v.Type, v.Muted = "muted", &e.Muted
	case engine.EventHand:
		v.Type = "hand_lowered"
		if e.HandRaised {
			v.Type = "hand_raised"
		}
		v.HandRaised = &e.HandRaised
	default:
		v.Type = string(e.Kind)
	}
	return v
}

// hub fans a room's events out to its SSE subscribers. Publishing never
// blocks the engine: a subscriber too slow to keep up loses events (counted).
type hub struct {
	mu      sync.Mutex
	subs    map[chan eventView]struct{}
	closed  bool
	dropped atomic.Uint64
}

func newHub() *hub { return &hub{subs: map[chan eventView]struct{}{}} }

func (h *hub) publish(e eventView) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
			h.dropped.Add(1)
		}
	}
}

// subscribe returns a channel of the room's events; it is closed when the
// room closes or cancel is called.
func (h *hub) subscribe() (ch chan eventView, cancel func()) {
	ch = make(chan eventView, 64)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(ch)
		return ch, func() {}
	}
	h.subs[ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}

// levelInterval throttles the active-speaker events: four a second.
const levelInterval = 250 * time.Millisecond

// serveEvents streams a room's events as Server-Sent Events, with the
// active speakers and their levels when they change, at most four times a
// second.
func (s *Server) serveEvents(w http.ResponseWriter, req *http.Request, r *room) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming is not supported")
		return
	}
	events, cancel := r.hub.subscribe()
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": handsup events for room %s\n\n", r.ID())
	flusher.Flush()

	ticker := time.NewTicker(levelInterval)
	defer ticker.Stop()
	var last string
	for {
		select {
		case <-req.Context().Done():
			return
		case e, ok := <-events:
			if !ok {
				writeSSE(w, eventView{Type: "room_closed", Room: r.ID()})
				flusher.Flush()
				return
			}
			writeSSE(w, e)
			flusher.Flush()
		case <-ticker.C:
			e := activeSpeakers(r)
			key := fmt.Sprint(e.Speakers)
			if key == last {
				continue
			}
			last = key
			writeSSE(w, e)
			flusher.Flush()
		}
	}
}

func activeSpeakers(r *room) eventView {
	snap := r.Snapshot()
	e := eventView{Type: "active_speakers", Room: r.ID(), Speakers: []speakerLevel{}}
	for _, sp := range snap.Speakers {
		if sp.Mixed {
			e.Speakers = append(e.Speakers, speakerLevel{ID: sp.ID, Level: sp.Level})
		}
	}
	return e
}

func writeSSE(w http.ResponseWriter, e eventView) {
	data, _ := json.Marshal(e) // plain structs always marshal
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Type, data)
}
