package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handsup-audio/handsup/engine"
)

// eventView is one Server-Sent Event's data.
type eventView struct {
	Type string `json:"type"`
	// ID is the event's id in its room's stream (the SSE id line too):
	// increasing by one per event. A room's ids start at the microseconds
	// since 1970 when it was created, so an id from an earlier room of the
	// same name, or from before a restart, is never mistaken for one of
	// this room's. Active-speaker events carry none (0): they are not
	// kept for replay.
	ID          uint64         `json:"id,omitempty"`
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

// snapshotView is the room's state, sent first on a stream that cannot
// resume: every event up to its id is reflected in it. Events that follow
// it may be too (they are assignments: applying one twice is harmless).
// The audience is counted, not listed: a room may hold thousands.
type snapshotView struct {
	Type         string         `json:"type"` // "snapshot"
	ID           uint64         `json:"id"`
	Room         string         `json:"room"`
	Participants int            `json:"participants"`
	Listeners    int            `json:"listeners"`
	Stage        []stageMember  `json:"stage"`    // speakers and moderators, in join order
	Hands        []string       `json:"hands"`    // the hand queue, in raise order
	Speakers     []speakerLevel `json:"speakers"` // active speakers, as active_speakers sends them
}

type stageMember struct {
	ID    string `json:"id"`
	Role  string `json:"role"`
	Muted bool   `json:"muted"`
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

// subscriberBuffer is how many events a subscriber may fall behind.
const subscriberBuffer = 256

// hub fans a room's events out to its SSE subscribers and keeps the latest
// of them for subscribers that reconnect. Publishing never blocks the
// engine.
type hub struct {
	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	closed  bool
	last    uint64      // the latest event's id
	backlog []eventView // the latest events, a ring: oldest at start once full
	start   int
	size    int // the backlog's capacity
	dropped atomic.Uint64
}

// subscriber is one stream's queue of events.
type subscriber struct {
	ch chan eventView
}

// newHub makes a room's hub keeping the last size events.
func newHub(size int) *hub {
	return &hub{
		subs: map[*subscriber]struct{}{},
		last: uint64(time.Now().UnixMicro()),
		size: size,
	}
}

func (h *hub) publish(e eventView) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last++
	e.ID = h.last
	if len(h.backlog) < h.size {
		h.backlog = append(h.backlog, e)
	} else {
		h.backlog[h.start] = e
		h.start = (h.start + 1) % h.size
	}
	for sub := range h.subs {
		select {
		case sub.ch <- e:
		default:
			h.dropped.Add(1)
		}
	}
}

// follow subscribes to the room's events. With resume set and after the id
// of an event still in the backlog (or the latest id), replay holds every
// later event, oldest first, and the subscriber's channel the events after
// them: nothing falls between, since both are read under the hub's lock.
// Otherwise replay is nil and from is the id of the latest event, which a
// snapshot taken now reflects. The channel is closed when the room closes
// or unfollow is called.
func (h *hub) follow(after uint64, resume bool) (sub *subscriber, replay []eventView, from uint64) {
	sub = &subscriber{ch: make(chan eventView, subscriberBuffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(sub.ch)
	} else {
		h.subs[sub] = struct{}{}
	}
	oldest := h.last - uint64(len(h.backlog)) + 1
	if !resume || after < oldest-1 || after > h.last {
		return sub, nil, h.last
	}
	replay = make([]eventView, 0, h.last-after)
	for i := int(after + 1 - oldest); i < len(h.backlog); i++ {
		replay = append(replay, h.backlog[(h.start+i)%len(h.backlog)])
	}
	return sub, replay, h.last
}

// unfollow ends a subscription.
func (h *hub) unfollow(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[sub]; ok {
		delete(h.subs, sub)
		close(sub.ch)
	}
}

// subscribe returns a channel of the room's live events; it is closed when
// the room closes or cancel is called.
func (h *hub) subscribe() (ch chan eventView, cancel func()) {
	sub, _, _ := h.follow(0, false)
	return sub.ch, func() { h.unfollow(sub) }
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for sub := range h.subs {
		delete(h.subs, sub)
		close(sub.ch)
	}
}

// levelInterval throttles the active-speaker events: four a second.
const levelInterval = 250 * time.Millisecond

// mayReadEvents checks a request for a room's event stream. It is the one
// place the stream's credentials are read: today the admin token in the
// Authorization header.
func (s *Server) mayReadEvents(r *http.Request) bool {
	return s.isAdmin(r)
}

// lastEventID is where a reconnecting client resumes: the Last-Event-ID
// header (EventSource sends it) or, for clients that cannot set headers,
// the last_event_id query parameter. ok is false without one, or with one
// that is not an id.
func lastEventID(r *http.Request) (id uint64, ok bool) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
	}
	id, err := strconv.ParseUint(v, 10, 64)
	return id, err == nil
}

// serveEvents streams a room's events as Server-Sent Events: what the
// client missed since its Last-Event-ID, or a snapshot when that is not in
// the backlog, then the live events, the active speakers and their levels
// when they change (at most four times a second), and a ": ping" comment
// every Config.EventHeartbeat.
func (s *Server) serveEvents(w http.ResponseWriter, req *http.Request, r *room) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "streaming is not supported")
		return
	}
	after, resume := lastEventID(req)
	sub, replay, from := r.hub.follow(after, resume)
	defer r.hub.unfollow(sub)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": handsup events for room %s\n\n", r.ID())
	var last string // the active speakers last sent
	if replay == nil {
		snap := snapshotOf(r, from)
		last = fmt.Sprint(snap.Speakers)
		writeSSE(w, snap.Type, snap.ID, snap)
	}
	for _, e := range replay {
		writeSSE(w, e.Type, e.ID, e)
	}
	flusher.Flush()

	ticker := time.NewTicker(levelInterval)
	defer ticker.Stop()
	heartbeat := time.NewTicker(s.cfg.EventHeartbeat)
	defer heartbeat.Stop()
	for {
		select {
		case <-req.Context().Done():
			return
		case <-heartbeat.C:
			fmt.Fprint(w, ": ping\n\n")
			flusher.Flush()
		case e, ok := <-sub.ch:
			if !ok {
				writeSSE(w, "room_closed", 0, eventView{Type: "room_closed", Room: r.ID()})
				flusher.Flush()
				return
			}
			writeSSE(w, e.Type, e.ID, e)
			flusher.Flush()
		case <-ticker.C:
			e := eventView{Type: "active_speakers", Room: r.ID(), Speakers: activeSpeakers(r.Snapshot())}
			key := fmt.Sprint(e.Speakers)
			if key == last {
				continue
			}
			last = key
			writeSSE(w, e.Type, 0, e)
			flusher.Flush()
		}
	}
}

// snapshotOf is the room's state, reflecting every event up to id.
func snapshotOf(r *room, id uint64) snapshotView {
	snap := r.Snapshot()
	v := snapshotView{
		Type: "snapshot", ID: id, Room: r.ID(),
		Participants: snap.Members, Listeners: snap.ByRole[engine.Listener],
		Stage: make([]stageMember, 0, len(snap.Speakers)), Hands: snap.Hands,
		Speakers: activeSpeakers(snap),
	}
	for _, sp := range snap.Speakers {
		v.Stage = append(v.Stage, stageMember{ID: sp.ID, Role: sp.Role.String(), Muted: sp.Muted})
	}
	return v
}

// activeSpeakers are the speakers in the last tick's mix and their levels.
func activeSpeakers(snap engine.RoomSnapshot) []speakerLevel {
	out := []speakerLevel{}
	for _, sp := range snap.Speakers {
		if sp.Mixed {
			out = append(out, speakerLevel{ID: sp.ID, Level: sp.Level})
		}
	}
	return out
}

// writeSSE writes one event: its id line when it has one, its type, and
// data as JSON.
func writeSSE(w http.ResponseWriter, typ string, id uint64, data any) {
	b, _ := json.Marshal(data) // plain structs always marshal
	if id != 0 {
		fmt.Fprintf(w, "id: %d\n", id)
	}
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, b)
}
