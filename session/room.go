package session

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/feedback"
)

// Room is an engine room whose participants are members bound to links.
// The engine room's methods (Participant, Snapshot, Kick, ...) are
// promoted; Join is the session's own.
type Room struct {
	*engine.Room
	m *Manager

	mu      sync.Mutex // guards members, streams and srs
	members map[string]*Member
	streams []feedback.SRStream // the members in join order, for sender reports
	srs     feedback.SenderReportScheduler

	// speakers are the RTCP sessions of the members' incoming streams,
	// polled for NACKs with the sender reports. spkMu is taken with no
	// other lock held after it.
	spkMu    sync.Mutex
	speakers map[*feedback.SpeakerSession]struct{}
}

// Join adds a participant to the room over link: link becomes the
// participant's sink (cfg.Sink is ignored), the participant's incoming
// packets are bound to the returned member, and, while its role
// contributes, the member runs the RTCP side of its incoming stream. When
// the participant leaves, for any reason, the link is closed. On error the
// link is left as it was, for the caller to close.
func (r *Room) Join(id string, cfg engine.ParticipantConfig, link Link) (*Member, error) {
	if link == nil {
		return nil, fmt.Errorf("session: join %q: nil link", id)
	}
	mem := &Member{room: r, id: id, link: link}
	r.mu.Lock()
	if _, dup := r.members[id]; dup {
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", engine.ErrParticipantExists, id)
	}
	r.members[id] = mem // reserved: the engine's joined event may come first
	r.mu.Unlock()

	cfg.Sink = link
	p, err := r.Room.Join(id, cfg)
	if err != nil {
		r.forget(mem)
		return nil, err
	}
	mem.mu.Lock()
	if mem.gone { // left before Join returned (a kick racing the join)
		mem.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", engine.ErrLeft, id)
	}
	mem.part = p
	mem.syncSpeakerLocked()
	link.Bind(mem) // under mem.mu: a leave that follows unbinds it
	mem.mu.Unlock()
	r.mu.Lock()
	if r.members[id] == mem { // else it left already
		r.streams = append(r.streams, srStream{mem})
	}
	r.mu.Unlock()
	return mem, nil
}

// Member finds a member by participant id.
func (r *Room) Member(id string) (*Member, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.members[id]
	if !ok || m.Participant() == nil {
		return nil, false
	}
	return m, true
}

// Members returns the room's members, sorted by id.
func (r *Room) Members() []*Member {
	out := r.appendMembers(nil)
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// appendMembers appends the room's members to out, in no order.
func (r *Room) appendMembers(out []*Member) []*Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.members {
		if m.Participant() != nil {
			out = append(out, m)
		}
	}
	return out
}

// onEvent follows the engine room's events: a leaver's link is closed and
// its RTCP side stopped; a role change starts or stops the RTCP side of the
// participant's incoming stream. It runs synchronously in the engine,
// outside the engine room's lock.
func (r *Room) onEvent(e engine.Event) {
	switch e.Kind {
	case engine.EventLeft:
		r.mu.Lock()
		mem := r.members[e.Participant]
		r.mu.Unlock()
		if mem != nil {
			mem.leave()
			r.forget(mem)
		}
	case engine.EventRole:
		r.mu.Lock()
		mem := r.members[e.Participant]
		r.mu.Unlock()
		if mem != nil {
			mem.mu.Lock()
			mem.syncSpeakerLocked()
			mem.mu.Unlock()
		}
	}
}

// forget drops a member, keeping the others' order.
func (r *Room) forget(mem *Member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.members[mem.id] == mem {
		delete(r.members, mem.id)
	}
	for i, st := range r.streams {
		if st.(srStream).m == mem {
			r.streams = append(r.streams[:i], r.streams[i+1:]...)
			break
		}
	}
}

// sendReports sends the room's sender reports due at now. Reading a
// stream's counters takes the engine room's lock, so this runs apart from
// the room's ticks.
func (r *Room) sendReports(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.srs.Tick(now, r.streams)
}

// setSpeaker adds or removes a member's incoming stream's RTCP session
// from those polled for NACKs.
func (r *Room) setSpeaker(s *feedback.SpeakerSession, on bool) {
	r.spkMu.Lock()
	defer r.spkMu.Unlock()
	if !on {
		delete(r.speakers, s)
		return
	}
	if r.speakers == nil {
		r.speakers = make(map[*feedback.SpeakerSession]struct{})
	}
	r.speakers[s] = struct{}{}
}

// appendSpeakers appends the RTCP sessions of the members' incoming
// streams to out.
func (r *Room) appendSpeakers(out []*feedback.SpeakerSession) []*feedback.SpeakerSession {
	r.spkMu.Lock()
	defer r.spkMu.Unlock()
	for s := range r.speakers {
		out = append(out, s)
	}
	return out
}
