package server

import (
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/handsup-audio/handsup/engine"
)

// hands remembers when the server saw each raised hand of a room, for the
// queue's order (the engine keeps no raise order yet).
type hands struct {
	mu     sync.Mutex
	raised map[string]handEntry // participant id →
	seq    uint64
}

type handEntry struct {
	seq uint64 // the order the server saw the hands go up in
	at  time.Time
}

// note follows a room's hand events: a raised hand is queued (a second
// hand_raised keeps its place), a lowered hand or a leaver leaves the
// queue. It runs in the engine's event callback: quick.
func (h *hands) note(e engine.Event, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case e.Kind == engine.EventHand && e.HandRaised:
		if h.raised == nil {
			h.raised = map[string]handEntry{}
		}
		if _, ok := h.raised[e.Participant]; !ok {
			h.seq++
			h.raised[e.Participant] = handEntry{seq: h.seq, at: now}
		}
	case e.Kind == engine.EventHand, e.Kind == engine.EventLeft:
		delete(h.raised, e.Participant)
	}
}

type handView struct {
	ID       string `json:"id"`
	Role     string `json:"role"`
	RaisedAt string `json:"raised_at,omitempty"`
}

// handQueue is the room's raised hands, first raised first: the one place
// that decides the order.
func (r *room) handQueue() []handView {
	type queued struct {
		handView
		seq uint64
	}
	var q []queued
	ps := r.Participants() // before hands.mu: the engine calls note holding its own locks
	r.hands.mu.Lock()
	for _, p := range ps {
		if !p.HandRaised() {
			continue
		}
		v := queued{handView: handView{ID: p.ID(), Role: p.Role().String()}, seq: ^uint64(0)}
		if e, ok := r.hands.raised[p.ID()]; ok {
			v.seq, v.RaisedAt = e.seq, e.at.UTC().Format(time.RFC3339Nano)
		}
		q = append(q, v)
	}
	r.hands.mu.Unlock()
	sort.Slice(q, func(i, j int) bool {
		if q[i].seq != q[j].seq {
			return q[i].seq < q[j].seq
		}
		return q[i].ID < q[j].ID
	})
	out := make([]handView, len(q))
	for i := range q {
		out[i] = q[i].handView
	}
	return out
}

// getHands answers the hand queue (moderators and the admin).
func (s *Server) getHands(w http.ResponseWriter, r *http.Request) {
	rm, ok := s.roomOf(w, r)
	if !ok {
		return
	}
	if err := s.allow(principalOf(r), rm, actHands, ""); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"hands": rm.handQueue()})
}
