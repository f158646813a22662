package engine

import (
	"math"
	"sync/atomic"

	"github.com/handsup-audio/handsup/jitter"
	"github.com/handsup-audio/handsup/mixer"
)

// ParticipantConfig describes a participant as it joins. The zero value
// joins a listener with payload type 111, a random SSRC and no sink.
type ParticipantConfig struct {
	Role        Role
	Muted       bool
	PayloadType uint8 // Opus payload type in and out; default 111
	// REDPayloadType, when set, is the participant's RED (RFC 2198)
	// payload type: its output comes wrapped in RED at its tier's
	// redundancy distance, and RED it sends is unwrapped, the redundant
	// copies filling losses.
	REDPayloadType uint8
	SSRC           uint32 // SSRC of the participant's output stream; 0 picks one at random
	Sink           Sink   // where the participant's output goes; nil discards it
	// AudioLevelExtID, when set, is the id of the RFC 6464 audio-level
	// header extension (urn:ietf:params:rtp-hdrext:ssrc-audio-level) in the
	// participant's RTP: the level and voice activity it reports are read
	// from each packet and shown in ParticipantStats. Default 0: none.
	// What a client reports is its own claim; the mix and the active
	// speakers go by the level the engine measures.
	AudioLevelExtID uint8
}

// Participant is one member of a room. Its methods are safe for concurrent
// use.
type Participant struct {
	// Read for every member on every tick: kept together, in three cache
	// lines (participantHotBytes): these two, ts's last field (tier) and
	// out's fields before runs.
	private *encodedOutput // private mix-minus encoder, while held; guarded by room.mu
	sink    Sink
	ts      tierState // guarded by room.mu
	out     outStream

	id   string
	room *Room

	role  atomic.Uint32 // Role; read by WriteRTP without the room lock
	left  atomic.Bool
	hand  atomic.Bool // written under room.mu with handSeq
	muted bool        // guarded by room.mu
	// handSeq is the room's raise number of the hand while it is up (0
	// while down): the hand queue's order. Guarded by room.mu.
	handSeq uint64
	gainDB  float64 // guarded by room.mu

	levelExt uint8 // ParticipantConfig.AudioLevelExtID

	// in is non-nil while the role contributes. It is stored under
	// room.mu and loaded without it by WriteRTP, hence atomic.
	in atomic.Pointer[inputSide]

	lastMix uint64 // room tick the participant's voice was last mixed
	everMix bool
	index   int // position in room.members
}

// ID is the participant's id, unique in its room.
func (p *Participant) ID() string { return p.id }

// Room is the room the participant joined.
func (p *Participant) Room() *Room { return p.room }

// Role is the participant's current role.
func (p *Participant) Role() Role { return Role(p.role.Load()) }

// SSRC is the SSRC of the participant's output stream.
func (p *Participant) SSRC() uint32 { return p.out.ssrc }

// OutputInfo describes the participant's output stream for RTCP sender
// reports: its SSRC, the RTP timestamp of the room's latest tick, and the
// packets and payload octets sent so far. It takes the room's lock: do not
// call it from the room's hooks.
func (p *Participant) OutputInfo() (ssrc, timestamp uint32, packets, octets uint64) {
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	o := &p.out
	return o.ssrc, o.timestamp(max(r.tick, o.joinTick)), o.packets, o.octets
}

// PayloadType is the Opus payload type of the participant's streams.
func (p *Participant) PayloadType() uint8 { return p.out.payloadType }

// REDPayloadType is the participant's RED payload type, 0 without RED.
func (p *Participant) REDPayloadType() uint8 { return p.out.redPT }

// HandRaised reports whether the participant's hand is up.
func (p *Participant) HandRaised() bool { return p.hand.Load() }

// RaiseHand puts the participant's hand up (asking to speak); it reports
// whether that changed anything.
func (p *Participant) RaiseHand() bool { return p.setHand(true) }

// LowerHand puts the participant's hand down; it reports whether that
// changed anything.
func (p *Participant) LowerHand() bool { return p.setHand(false) }

func (p *Participant) setHand(up bool) bool {
	r := p.room
	r.mu.Lock()
	changed := p.setHandLocked(up)
	r.mu.Unlock()
	if changed {
		r.emit(Event{Kind: EventHand, Participant: p.id, HandRaised: up})
	}
	return changed
}

// setHandLocked moves the hand and its place in the queue; it reports
// whether that changed anything.
func (p *Participant) setHandLocked(up bool) bool {
	if p.hand.Load() == up {
		return false
	}
	p.hand.Store(up)
	p.handSeq = 0
	if up {
		p.room.handSeq++
		p.handSeq = p.room.handSeq
	}
	return true
}

// Muted reports whether the participant is muted.
func (p *Participant) Muted() bool {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return p.muted
}

// SetMuted mutes or unmutes the participant. A muted speaker leaves the mix
// at the next tick and keeps hearing the room.
func (p *Participant) SetMuted(m bool) {
	r := p.room
	r.mu.Lock()
	changed := p.muted != m
	p.muted = m
	r.mu.Unlock()
	if changed {
		r.emit(Event{Kind: EventMuted, Participant: p.id, Muted: m})
	}
}

// GainDB is the gain applied to the participant's voice, in dB.
func (p *Participant) GainDB() float64 {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return p.gainDB
}

// SetGainDB sets the gain applied to the participant's voice, clamped to
// -60..+20 dB.
func (p *Participant) SetGainDB(db float64) {
	db = max(-60, min(20, db))
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	p.gainDB = db
	if in := p.in.Load(); in != nil {
		in.src.SetGain(dbToLinear(db))
	}
}

func dbToLinear(db float64) float32 { return float32(math.Pow(10, db/20)) }

// SetRole changes the participant's role while the room runs: a promoted
// listener is heard from its next packets, a demoted speaker leaves the mix
// at once, and the participant's output stream stays continuous. A listener
// promoted with its hand up has it lowered: the room hears EventRole, then
// EventHand. Promotion fails with ErrStageFull when the room's MaxSpeakers
// are on stage.
func (p *Participant) SetRole(role Role) error {
	if role > Moderator {
		return ErrBadRole
	}
	r := p.room
	r.mu.Lock()
	old := p.Role()
	if r.closed || p.left.Load() {
		r.mu.Unlock()
		return ErrLeft
	}
	if old == role {
		r.mu.Unlock()
		return nil
	}
	if err := r.setRoleLocked(p, role); err != nil {
		r.mu.Unlock()
		return err
	}
	lowered := role.Contributes() && !old.Contributes() && p.setHandLocked(false)
	r.mu.Unlock()
	r.emit(Event{Kind: EventRole, Participant: p.id, Role: role})
	if lowered {
		r.emit(Event{Kind: EventHand, Participant: p.id, HandRaised: false})
	}
	return nil
}

// Leave takes the participant out of the room; its sink gets nothing more.
// Its left event carries ReasonLeft.
func (p *Participant) Leave() { p.room.remove(p, ReasonLeft) }

// ParticipantStats is a snapshot of a participant's state.
type ParticipantStats struct {
	ID         string
	Role       Role
	Muted      bool
	HandRaised bool
	// HandSeq orders the hand queue: the room's raise number of the hand
	// while it is up (earlier raises have smaller numbers), 0 while down.
	HandSeq uint64
	GainDB  float64
	SSRC    uint32
	// Level is the RFC 6464 level of the participant's last frame: 0 (loud)
	// to 127 (silent).
	Level   uint8
	Mixed   bool          // the participant's voice was in the last tick's mix
	Private bool          // the participant hears its own mix-minus encoder
	Tier    int           // index in RoomConfig.Tiers
	Jitter  *jitter.Stats // the input jitter buffer's statistics; nil for listeners
	// LevelReported says the participant's packets carry an RFC 6464
	// audio level (ParticipantConfig.AudioLevelExtID): ReportedLevel is
	// the last one, 0 (loud) to 127 (silent), and VoiceActivity its V bit,
	// as the client claims them. A client can lie: Level, which the engine
	// measures, is what the mix and the active speakers go by.
	LevelReported bool
	ReportedLevel uint8
	VoiceActivity bool
}

// Stats returns a snapshot of the participant's state.
func (p *Participant) Stats() ParticipantStats {
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	s := ParticipantStats{
		ID: p.id, Role: p.Role(), Muted: p.muted, HandRaised: p.HandRaised(), HandSeq: p.handSeq,
		GainDB: p.gainDB, SSRC: p.out.ssrc, Level: mixer.SilentLevel,
		Private: p.private != nil, Tier: p.ts.tier,
	}
	if in := p.in.Load(); in != nil {
		s.Level = in.src.Level()
		s.Mixed = in.src.Mixed()
		js := in.player.Buffer().Stats()
		s.Jitter = &js
		if rep := in.reported.Load(); rep != 0 {
			s.LevelReported, s.ReportedLevel, s.VoiceActivity = true, uint8(rep)&0x7f, rep&0x80 != 0
		}
	}
	return s
}
