package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

// eventWriteTimeout bounds each write to an event stream: a client that
// reads nothing for this long, heartbeats included, is disconnected.
const eventWriteTimeout = 30 * time.Second

// eventStats are the server's event-stream counters, summed over its rooms
// and read at scrape time.
type eventStats struct {
	published   atomic.Uint64
	dropped     atomic.Uint64 // events cut-off streams missed
	cut         atomic.Uint64 // streams cut off for falling behind
	subscribers atomic.Int64
	limit       int64 // subscribers at most, every room (Config.MaxEventStreams)
}

// errStreamsFull: a room or the server has as many event streams as it
// takes (503 with Retry-After).
var errStreamsFull = errors.New("too many event streams")

// collectors export the counters to Prometheus: no room label, since the
// counts outlive rooms.
func (st *eventStats) collectors() []prometheus.Collector {
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	return []prometheus.Collector{
		counter("handsup_events_total", "Room events published to event streams (each with an id).", &st.published),
		counter("handsup_events_dropped_total", "Events that streams too slow to keep up missed: they fell out of the room's backlog before the stream sent them. The stream was disconnected; reconnecting, it gets a snapshot.", &st.dropped),
		counter("handsup_event_streams_cut_total", "Event streams disconnected for falling more than the room's backlog behind.", &st.cut),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "handsup_event_subscribers", Help: "Open event streams."},
			func() float64 { return float64(st.subscribers.Load()) }),
	}
}

// hub keeps a room's latest events, each with its id, and wakes the
// room's event streams when one comes. The backlog is every stream's
// buffer: a stream reads what follows its last id, and one that falls
// more than the backlog behind is cut off. Publishing never blocks the
// engine.
type hub struct {
	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	closed  bool
	last    uint64      // the latest event's id
	backlog []eventView // the latest events, a ring: oldest at start once full
	start   int
	size    int // the backlog's capacity
	limit   int // subscribers at most (Config.MaxRoomEventStreams)
	stats   *eventStats
}

// subscriber is one stream's wake-up call: a token in wake means there may
// be events after the stream's last id, or the room closed.
type subscriber struct {
	wake chan struct{}
}

// newHub makes a room's hub keeping the last size events, with at most
// limit subscribers, counting in stats.
func newHub(size, limit int, stats *eventStats) *hub {
	return &hub{
		subs:  map[*subscriber]struct{}{},
		last:  uint64(time.Now().UnixMicro()),
		size:  size,
		limit: limit,
		stats: stats,
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
	h.stats.published.Add(1)
	h.wakeLocked()
}

func (h *hub) wakeLocked() {
	for sub := range h.subs {
		select {
		case sub.wake <- struct{}{}:
		default: // already woken
		}
	}
}

// follow subscribes a stream to the room's events; last is the latest
// event's id, which a snapshot taken from now on reflects.
// Past the room's or the server's limit of streams it is errStreamsFull.
func (h *hub) follow() (sub *subscriber, last uint64, err error) {
	sub = &subscriber{wake: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= h.limit {
		return nil, 0, fmt.Errorf("%w: the room has %d, its most", errStreamsFull, h.limit)
	}
	if n := h.stats.subscribers.Add(1); n > h.stats.limit {
		h.stats.subscribers.Add(-1)
		return nil, 0, fmt.Errorf("%w: the server has %d, its most", errStreamsFull, h.stats.limit)
	}
	h.subs[sub] = struct{}{}
	if h.closed {
		sub.wake <- struct{}{}
	}
	return sub, h.last, nil
}

// unfollow ends a subscription.
func (h *hub) unfollow(sub *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[sub]; ok {
		delete(h.subs, sub)
		h.stats.subscribers.Add(-1)
	}
}

// since appends the events after id to buf, oldest first. ok is false when
// the backlog does not hold every one of them (missed say how many it
// lacks) or id is later than the latest event. closed reports that the
// room has closed: no events will follow these.
func (h *hub) since(id uint64, buf []eventView) (events []eventView, ok bool, missed uint64, closed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	oldest := h.last - uint64(len(h.backlog)) + 1
	switch {
	case id > h.last:
		return buf, false, 0, h.closed
	case id+1 < oldest:
		return buf, false, oldest - id - 1, h.closed
	}
	for i := int(id + 1 - oldest); i < len(h.backlog); i++ {
		buf = append(buf, h.backlog[(h.start+i)%len(h.backlog)])
	}
	return buf, true, 0, h.closed
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	h.wakeLocked()
}

// levelInterval throttles the active-speaker events: four a second.
const levelInterval = 250 * time.Millisecond

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
	rc := http.NewResponseController(w)
	sub, cursor, err := r.hub.follow()
	if err != nil {
		writeErr(w, s.admit.count(err))
		return
	}
	defer r.hub.unfollow(sub)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// flush sends what was written, within eventWriteTimeout.
	flush := func() bool {
		return rc.SetWriteDeadline(time.Now().Add(eventWriteTimeout)) == nil && rc.Flush() == nil
	}
	fmt.Fprintf(w, ": handsup events for room %s\n\n", r.ID())
	var last string // the active speakers last sent
	after, resume := lastEventID(req)
	if _, ok, _, _ := r.hub.since(after, nil); resume && ok {
		cursor = after // what follows comes from the backlog
	} else {
		snap := snapshotOf(r, cursor)
		last = fmt.Sprint(snap.Speakers)
		writeSSE(w, snap.Type, snap.ID, snap)
	}
	select { // send what the backlog holds after cursor
	case sub.wake <- struct{}{}:
	default: // woken already
	}
	ticker := time.NewTicker(levelInterval)
	defer ticker.Stop()
	heartbeat := time.NewTicker(s.cfg.EventHeartbeat)
	defer heartbeat.Stop()
	var buf []eventView
	for {
		select {
		case <-req.Context().Done():
			return
		case <-heartbeat.C:
			fmt.Fprint(w, ": ping\n\n")
		case <-sub.wake:
			events, ok, missed, closed := r.hub.since(cursor, buf[:0])
			if !ok {
				s.events.dropped.Add(missed)
				s.events.cut.Add(1)
				// An EventSource reconnects by itself, with Last-Event-ID.
				fmt.Fprint(w, ": too slow: reconnect with Last-Event-ID\n\n")
				flush()
				return
			}
			for _, e := range events {
				writeSSE(w, e.Type, e.ID, e)
				cursor = e.ID
			}
			buf = events
			if closed {
				writeSSE(w, "room_closed", 0, eventView{Type: "room_closed", Room: r.ID()})
				flush()
				return
			}
		case <-ticker.C:
			e := eventView{Type: "active_speakers", Room: r.ID(), Speakers: activeSpeakers(r.Snapshot())}
			key := fmt.Sprint(e.Speakers)
			if key == last {
				continue
			}
			last = key
			writeSSE(w, e.Type, 0, e)
		}
		if !flush() {
			return
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
