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
	// MaxParticipants bounds the room's members, listeners included
	// (ErrRoomFull): a crowd in one room cannot take the ticks of the
	// others. Default 0, no limit.
	MaxParticipants int
	TopN            int // voices mixed at once, the loudest; default 4
	// Tiers are the output quality levels, cleanest first, at most 4;
	// default DefaultTiers(). Everyone starts on the first.
	Tiers []Tier
	// TierRelax is how long a participant's reports must allow a less
	// protective tier before it moves there (to the most protective tier
	// any of those reports needed); default 10 s. Moving up, to protect,
	// takes one report.
	TierRelax time.Duration
	// NACKMaxRTT is the round trip up to which a participant's NACKs are
	// answered: beyond it a retransmission arrives too late to play;
	// default 100 ms.
	NACKMaxRTT time.Duration
	// NACKRate bounds the retransmissions per participant and second;
	// default 25.
	NACKRate int
	// PrivateHangover keeps a speaker's own mix-minus encoder this long
	// after their voice was last in the mix, so pauses between words do not
	// switch encoders; default 1.5 s.
	PrivateHangover time.Duration
	// NoDTX keeps every output's encoder running at full rate through
	// silence. By default (false), while an output's mix is silent (no
	// voice in it) its encoder runs with DTX: about 200 ms into the
	// silence libopus emits one-byte frames, which are not sent, and a
	// comfort-noise frame every 400 ms, which is, timestamps running on
	// and the marker set on the packet after each gap (RFC 7587). A silent
	// room costs a listener 2.5 packets a second instead of 50; DTX is off
	// again for the first frame with a voice in it. (DTX stays on only
	// while the mix is silent: libopus's voice detection would also thin
	// out steady tones and music.)
	NoDTX  bool
	Jitter jitter.Config // each speaker's jitter buffer
	Mixer  mixer.Config  // TopN above overrides Mixer.TopN
	// OnEvent, if set, hears the room's events (joins, leaves, role changes,
	// mutes, hands). It is called synchronously and must not block.
	OnEvent func(Event)
	// Send, if set, sends what the room's sinks queued during a tick: the
	// engine calls it once the tick's packets are built and the room's
	// lock released (joins, leaves and mutes never wait on the kernel),
	// with part i of parts, the parts at once on the engine's idle workers
	// (a large room's sends leave on every core), then AfterTick.
	// rtpudp.Batch.SendPart is one. parts is 1 unless the room has more
	// than SendSplit sinks or its sends take one worker longer than
	// SplitSendAfter.
	Send func(part, parts int)
	// SendSplit is how many sinks one part of Send takes at most: a room
	// of more is split in parts (as many as it takes, at most one per
	// worker); default 12,000, about 17 ms of sendmmsg on one core (1.45
	// µs a datagram on loopback). Parts on several cores cost more per
	// packet than one (they contend for the socket: 15-45% more CPU per
	// datagram at 10,000 listeners, docs/performance.md), and a tick waits
	// for its slowest part, which a busy machine may leave unscheduled: a
	// room splits only when one core could not keep up.
	SendSplit int
	// SplitSendAfter splits a smaller room's Send too, when its sends in
	// one part, timed every tick and averaged over about a third of a
	// second, take longer than this: on a slower or busier machine than
	// SendSplit's figure, a large room's ticks would otherwise run late
	// and skip. A split room sends one tick in one part every 5 s and
	// joins its parts again when that send took under 6/7 of this.
	// Default DefaultSplitSendAfter (16 ms); negative: split by SendSplit
	// alone.
	SplitSendAfter time.Duration
	// AfterTick, if set, runs at the end of each of the room's ticks on the
	// goroutine that ticked it, after every sink call and Send, outside the
	// room's lock: a transport that batches a tick's packets sends them
	// here.
	AfterTick func()
}

func (c RoomConfig) withDefaults() RoomConfig {
	if c.TopN == 0 {
		c.TopN = 4
	}
	if c.PrivateHangover == 0 {
		c.PrivateHangover = 1500 * time.Millisecond
	}
	if len(c.Tiers) == 0 {
		c.Tiers = DefaultTiers()
	}
	if c.TierRelax <= 0 {
		c.TierRelax = 10 * time.Second
	}
	if c.NACKMaxRTT <= 0 {
		c.NACKMaxRTT = 100 * time.Millisecond
	}
	if c.NACKRate == 0 {
		c.NACKRate = 25
	}
	if c.SendSplit <= 0 {
		c.SendSplit = 12000
	}
	if c.SplitSendAfter == 0 {
		c.SplitSendAfter = DefaultSplitSendAfter
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
	ph  *phase // the clock Run ticks it on

	mu        sync.Mutex // guards membership, roles, mutes and the tick
	closed    bool
	members   []*Participant
	ahead     []Prefetcher // members[i]'s sink when it is a Prefetcher, else nil
	byID      map[string]*Participant
	speakers  []*Participant // contributing roles, in join order
	mix       *mixer.Mixer
	tiers     []Tier
	outputs   []*encodedOutput // one shared encoder per tier
	roomLim   mixer.Limiter    // the room mix, limited once for every tier
	roomPCM   [codec.FrameSamples]int16
	tierCount [maxTiers]int    // members per tier
	spare     []*encodedOutput // private encoders waiting for a speaker
	tick      uint64           // the stream clock: ticks run and ticks skipped
	skipSeen  uint64           // skipped ticks (the engine's and its phase's) already added to tick
	hangover  uint64           // PrivateHangover in ticks
	handSeq   uint64           // raises so far: each raise takes the next number
	sendParts sync.WaitGroup   // the Send parts on other workers
	splitter  sendSplitter     // how many parts the next Send runs in

	counters counters
}

// ID is the room's id.
func (r *Room) ID() string { return r.id }

// Config returns the room's settings, defaults filled in.
func (r *Room) Config() RoomConfig { return r.cfg }

// maxTiers bounds RoomConfig.Tiers: each used tier costs an encode a tick.
const maxTiers = 4

func newRoom(e *Engine, id string, cfg RoomConfig, ph *phase) (*Room, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Tiers) > maxTiers {
		return nil, fmt.Errorf("engine: %d tiers, at most %d", len(cfg.Tiers), maxTiers)
	}
	outputs := make([]*encodedOutput, len(cfg.Tiers))
	for i, t := range cfg.Tiers {
		if t.RED < 0 || t.RED > 2 {
			return nil, fmt.Errorf("engine: tier %q: RED distance %d, want 0 to 2", t.Name, t.RED)
		}
		enc, err := codec.NewEncoder(t.Encoder)
		if err != nil {
			return nil, fmt.Errorf("engine: tier %q: %w", t.Name, err)
		}
		outputs[i] = newOutput(enc, i)
	}
	r := &Room{
		id: id, cfg: cfg, eng: e, ph: ph,
		byID:     make(map[string]*Participant),
		mix:      mixer.New(cfg.Mixer),
		hangover: uint64(cfg.PrivateHangover / TickInterval),
		skipSeen: e.skipped.Load() + ph.skipped.Load(),
	}
	r.tiers, r.outputs = cfg.Tiers, outputs
	r.counters.init()
	return r, nil
}

// Join adds a participant. Ids are unique in a room (ErrParticipantExists);
// a speaker or moderator beyond MaxSpeakers gets ErrStageFull, a member
// beyond RoomConfig.MaxParticipants ErrRoomFull, and one beyond the
// engine's caps ErrEngineFull or ErrOverloaded. The participant hears the
// room from the next tick.
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
	p := &Participant{id: id, room: r, sink: cfg.Sink, muted: cfg.Muted, levelExt: cfg.AudioLevelExtID}
	p.out = outStream{ssrc: cfg.SSRC, payloadType: cfg.PayloadType & 0x7f, redPT: cfg.REDPayloadType & 0x7f,
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
	if r.cfg.MaxParticipants > 0 && len(r.members) >= r.cfg.MaxParticipants {
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: %d members, its most", ErrRoomFull, r.cfg.MaxParticipants)
	}
	if err := r.eng.admit(); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	p.out.joinTick = r.tick
	p.role.Store(uint32(Listener))
	if cfg.Role.Contributes() {
		if err := r.setRoleLocked(p, cfg.Role); err != nil {
			r.mu.Unlock()
			r.eng.release(1)
			return nil, err
		}
	}
	p.index = len(r.members)
	r.members = append(r.members, p)
	pf, _ := p.sink.(Prefetcher)
	r.ahead = append(r.ahead, pf)
	r.tierCount[p.ts.tier]++
	r.byID[id] = p
	r.counters.joined[cfg.Role].Add(1)
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

// Kick removes a participant by id, giving reason to the room's events:
// ReasonKicked, ReasonTimeout, or the caller's own.
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
		in, err := r.newInputSideLocked(p)
		if err != nil {
			return err
		}
		p.in.Store(in)
		r.speakers = append(r.speakers, p)
	case !role.Contributes() && old.Contributes():
		r.dropInputLocked(p)
	}
	p.role.Store(uint32(role))
	return nil
}

// dropInputLocked takes p off the stage: out of the mix, its input freed.
func (r *Room) dropInputLocked(p *Participant) {
	in := p.in.Load()
	if in == nil {
		return
	}
	r.mix.RemoveSource(in.src)
	r.releasePrivateLocked(p)
	p.in.Store(nil)
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
	r.tierCount[p.ts.tier]--
	delete(r.byID, p.id)
	last := len(r.members) - 1
	r.members[p.index] = r.members[last]
	r.members[p.index].index = p.index
	r.members[last] = nil
	r.members = r.members[:last]
	r.ahead[p.index] = r.ahead[last]
	r.ahead[last] = nil
	r.ahead = r.ahead[:last]
	r.counters.left[leaveIndex(reason)].Add(1)
	r.mu.Unlock()
	r.eng.release(1)
	r.emit(Event{Kind: EventLeft, Participant: p.id, Reason: reason})
}

// close ends the room: every participant leaves with ReasonRoomClosed.
func (r *Room) close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	members := r.members
	r.members, r.ahead, r.speakers = nil, nil, nil
	r.byID = map[string]*Participant{}
	r.counters.left[leaveIndex(ReasonRoomClosed)].Add(uint64(len(members)))
	r.mu.Unlock()
	r.eng.release(len(members))
	for _, p := range members {
		p.left.Store(true)
		r.emit(Event{Kind: EventLeft, Participant: p.id, Reason: ReasonRoomClosed})
	}
}

func (r *Room) emit(e Event) {
	if r.cfg.OnEvent != nil {
		e.Room = r.id
		r.cfg.OnEvent(e)
	}
}
