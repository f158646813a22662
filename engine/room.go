package engine

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/jitter"
	"github.com/handsup-audio/handsup/mixer"
)

// RoomConfig holds a room's settings. The zero value works: every zero
// field takes the default written beside it.
type RoomConfig struct {
	InviteOnly  bool // recorded for the server, which checks invites
	MaxSpeakers int  // speakers and moderators on stage at most; default 0, no limit
	TopN        int  // voices mixed at once, the loudest; default 4
	// Encoder is the setting of every output encoder; default 32 kbps,
	// complexity 5, fullband.
	Encoder codec.EncoderConfig
	// PrivateHangover keeps a speaker's own mix-minus encoder this long
	// after their voice was last in the mix, so pauses between words do not
	// switch encoders; default 1.5 s.
	PrivateHangover time.Duration
	Jitter          jitter.Config // each speaker's jitter buffer
	Mixer           mixer.Config  // TopN above overrides Mixer.TopN
	// OnEvent, if set, hears the room's events (joins, leaves, role changes,
	// mutes, hands). It is called synchronously and must not block.
	OnEvent func(Event)
	// AfterTick, if set, runs at the end of each of the room's ticks on the
	// goroutine that ticked it, after every sink call: a transport that
	// batches a tick's packets sends them here.
	AfterTick func()
}

func (c RoomConfig) withDefaults() RoomConfig {
	if c.TopN == 0 {
		c.TopN = 4
	}
	if c.PrivateHangover == 0 {
		c.PrivateHangover = 1500 * time.Millisecond
	}
	c.Mixer.TopN = c.TopN
	c.Mixer.FrameSamples = codec.FrameSamples
	return c
}

// Room is one live audio room: a stage of speakers and an audience.
type Room struct {
	id  string
	cfg RoomConfig
	eng *Engine

	mu       sync.Mutex // guards membership, roles, mutes and the tick
	closed   bool
	members  []*Participant
	byID     map[string]*Participant
	speakers []*Participant // contributing roles, in join order
	mix      *mixer.Mixer
	shared   encodedOutput
	spare    []*encodedOutput // private encoders waiting for a speaker
	tick     uint64
	hangover uint64 // PrivateHangover in ticks

	counters counters
}

// ID is the room's id.
func (r *Room) ID() string { return r.id }

// Config returns the room's settings, defaults filled in.
func (r *Room) Config() RoomConfig { return r.cfg }

func newRoom(e *Engine, id string, cfg RoomConfig) (*Room, error) {
	cfg = cfg.withDefaults()
	enc, err := codec.NewEncoder(cfg.Encoder)
	if err != nil {
		return nil, err
	}
	r := &Room{
		id: id, cfg: cfg, eng: e,
		byID:     make(map[string]*Participant),
		mix:      mixer.New(cfg.Mixer),
		hangover: uint64(cfg.PrivateHangover / TickInterval),
	}
	r.shared.enc = enc
	return r, nil
}

// Join adds a participant. Ids are unique in a room (ErrParticipantExists);
// a speaker or moderator beyond MaxSpeakers gets ErrStageFull. The
// participant hears the room from the next tick.
func (r *Room) Join(id string, cfg ParticipantConfig) (*Participant, error) {
	if len(id) == 0 || len(id) > 128 {
		return nil, ErrBadID
	}
	if cfg.Role > Moderator {
		return nil, ErrBadRole
	}
	if cfg.PayloadType == 0 {
		cfg.PayloadType = 111
	}
	if cfg.SSRC == 0 {
		cfg.SSRC = rand.Uint32() | 1
	}
	p := &Participant{id: id, room: r, sink: cfg.Sink, muted: cfg.Muted}
	p.out = outStream{ssrc: cfg.SSRC, payloadType: cfg.PayloadType & 0x7f,
		seq: uint16(rand.Uint32()), tsBase: rand.Uint32(), marker: true}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrRoomClosed
	}
	if _, dup := r.byID[id]; dup {
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", ErrParticipantExists, id)
	}
	p.out.joinTick = r.tick
	p.role.Store(uint32(Listener))
	if cfg.Role.Contributes() {
		if err := r.setRoleLocked(p, cfg.Role); err != nil {
			r.mu.Unlock()
			return nil, err
		}
	}
	p.index = len(r.members)
	r.members = append(r.members, p)
	r.byID[id] = p
	r.mu.Unlock()
	r.emit(Event{Kind: EventJoined, Participant: id, Role: cfg.Role})
	return p, nil
}

// Participant finds a member by id.
func (r *Room) Participant(id string) (*Participant, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.byID[id]
	return p, ok
}

// Participants returns the members in join order... or close to it: a
// leave moves the last member into the leaver's place.
func (r *Room) Participants() []*Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Participant(nil), r.members...)
}

// Len is the number of members.
func (r *Room) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.members)
}

// Counters returns the room's cumulative totals.
func (r *Room) Counters() Counters { return r.counters.snapshot() }

// Kick removes a participant by id, giving reason to the room's events.
func (r *Room) Kick(id, reason string) error {
	p, ok := r.Participant(id)
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoParticipant, id)
	}
	r.remove(p, reason)
	return nil
}

// setRoleLocked moves p between listener and contributing roles.
func (r *Room) setRoleLocked(p *Participant, role Role) error {
	old := p.Role()
	switch {
	case role.Contributes() && !old.Contributes():
		if r.cfg.MaxSpeakers > 0 && len(r.speakers) >= r.cfg.MaxSpeakers {
			return ErrStageFull
		}
		dec, err := codec.NewDecoder()
		if err != nil {
			return err
		}
		in := &inputSide{
			payloadType: p.out.payloadType,
			jb:          jitter.New(r.cfg.Jitter),
			dec:         dec,
			src:         r.mix.AddSource(),
			fade:        1,
		}
		in.src.SetGain(dbToLinear(p.gainDB))
		p.in = in
		p.inP.Store(in)
		r.speakers = append(r.speakers, p)
	case !role.Contributes() && old.Contributes():
		r.dropInputLocked(p)
	}
	p.role.Store(uint32(role))
	return nil
}

// dropInputLocked takes p off the stage: out of the mix, its input freed.
func (r *Room) dropInputLocked(p *Participant) {
	if p.in == nil {
		return
	}
	r.mix.RemoveSource(p.in.src)
	p.inP.Store(nil)
	p.in = nil
	for i, s := range r.speakers {
		if s == p {
			r.speakers = append(r.speakers[:i], r.speakers[i+1:]...)
			break
		}
	}
}

func (r *Room) remove(p *Participant, reason string) {
	r.mu.Lock()
	if p.left.Swap(true) || r.byID[p.id] != p {
		r.mu.Unlock()
		return
	}
	r.dropInputLocked(p)
	r.releasePrivateLocked(p)
	delete(r.byID, p.id)
	last := len(r.members) - 1
	r.members[p.index] = r.members[last]
	r.members[p.index].index = p.index
	r.members[last] = nil
	r.members = r.members[:last]
	r.mu.Unlock()
	r.emit(Event{Kind: EventLeft, Participant: p.id, Reason: reason})
}

// close ends the room: every participant leaves with reason "room closed".
func (r *Room) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	members := r.members
	r.members, r.speakers = nil, nil
	r.byID = map[string]*Participant{}
	r.mu.Unlock()
	for _, p := range members {
		p.left.Store(true)
		p.inP.Store(nil)
		r.emit(Event{Kind: EventLeft, Participant: p.id, Reason: "room closed"})
	}
}

func (r *Room) emit(e Event) {
	if r.cfg.OnEvent != nil {
		e.Room = r.id
		r.cfg.OnEvent(e)
	}
}
