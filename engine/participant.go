package engine

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/jitter"
	"github.com/handsup-audio/handsup/mixer"
	"github.com/handsup-audio/handsup/red"
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
}

// Participant is one member of a room. Its methods are safe for concurrent
// use.
type Participant struct {
	// Read for every member on every tick: kept together.
	private *encodedOutput // private mix-minus encoder, while held; guarded by room.mu
	ts      tierState      // guarded by room.mu
	sink    Sink
	out     outStream

	id   string
	room *Room

	role   atomic.Uint32 // Role; read by WriteRTP without the room lock
	left   atomic.Bool
	hand   atomic.Bool
	muted  bool    // guarded by room.mu
	gainDB float64 // guarded by room.mu

	in  *inputSide // non-nil while the role contributes; guarded by room.mu
	inP atomic.Pointer[inputSide]

	lastMix uint64 // room tick the participant's voice was last mixed
	everMix bool
	index   int // position in room.members
}

// inputSide is what a contributing participant needs to be heard: the
// parser state for WriteRTP, the jitter buffer, the decoder and the mixer
// source. Listeners do not carry one, so a large audience costs little.
type inputSide struct {
	payloadType uint8
	redPT       uint8 // 0: the participant sends no RED

	mu     sync.Mutex // serialises WriteRTP's reused packet struct
	pkt    rtp.Packet
	redPkt rtp.Packet // a redundant block, as the packet it copies
	blocks [red.MaxBlocks]red.Block

	jb  *jitter.Buffer
	dec *codec.Decoder
	src *mixer.Source

	// Decoded audio not played yet: a 60 ms packet covers three ticks.
	fifo    [codec.MaxFrameSamples + codec.FrameSamples]int16
	fifoLen int
	audible bool    // the frame being assembled holds decoded audio
	fade    float32 // gain applied to long concealment; 1 when not fading
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
	if p.hand.Swap(up) == up {
		return false
	}
	p.room.emit(Event{Kind: EventHand, Participant: p.id, HandRaised: up})
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
	if p.in != nil {
		p.in.src.SetGain(dbToLinear(db))
	}
}

func dbToLinear(db float64) float32 { return float32(math.Pow(10, db/20)) }

// SetRole changes the participant's role while the room runs: a promoted
// listener is heard from its next packets, a demoted speaker leaves the mix
// at once, and the participant's output stream stays continuous. Promotion
// fails with ErrStageFull when the room's MaxSpeakers are on stage.
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
	r.mu.Unlock()
	r.emit(Event{Kind: EventRole, Participant: p.id, Role: role})
	return nil
}

// Leave takes the participant out of the room; its sink gets nothing more.
func (p *Participant) Leave() { p.room.remove(p, "left") }

// WriteRTP takes one incoming RTP packet from the participant. It is safe
// from any goroutine and does not keep buf. Packets the room cannot use are
// counted and dropped; the error says why (ErrMalformedRTP, ErrPayloadType,
// ErrNotSpeaker, ErrLeft, ErrJitterDrop).
func (p *Participant) WriteRTP(buf []byte) error {
	c := &p.room.counters
	c.packetsIn.Add(1)
	c.bytesIn.Add(uint64(len(buf)))
	if p.left.Load() {
		c.dropped[DropLeft].Add(1)
		return ErrLeft
	}
	in := p.inP.Load()
	if in == nil || !p.Role().Contributes() {
		c.dropped[DropNotSpeaker].Add(1)
		return ErrNotSpeaker
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if err := in.pkt.Unmarshal(buf); err != nil || in.pkt.Version != 2 || len(in.pkt.Payload) == 0 {
		c.dropped[DropMalformed].Add(1)
		return ErrMalformedRTP
	}
	now := p.room.eng.now()
	switch {
	case in.pkt.PayloadType == in.payloadType:
	case in.redPT != 0 && in.pkt.PayloadType == in.redPT:
		if !in.unwrapRED(now, c) {
			c.dropped[DropMalformed].Add(1)
			return ErrMalformedRTP
		}
	default:
		c.dropped[DropPayloadType].Add(1)
		return ErrPayloadType
	}
	switch in.jb.Push(&in.pkt, now) {
	case jitter.Duplicate:
		c.dropped[DropDuplicate].Add(1)
	case jitter.Late:
		c.dropped[DropLate].Add(1)
	case jitter.Malformed:
		c.dropped[DropBadOpus].Add(1)
	case jitter.Overflow:
		c.dropped[DropOverflow].Add(1)
	default:
		return nil
	}
	return ErrJitterDrop
}

// ReportReception takes what the participant's receiver reports say about
// its stream (RTCP RR) and moves it between the room's tiers: at once to a
// more protective tier when the reported loss needs it, back once the
// reports have allowed less for RoomConfig.TierRelax. A speaker's own
// mix-minus encoder follows its tier too. It returns the tier, and whether
// it changed; the stream's sequence numbers and timestamps go on unbroken.
func (p *Participant) ReportReception(rep Reception) (tier int, changed bool) {
	r := p.room
	now := r.eng.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	old := p.ts.tier
	changed = p.ts.update(r.tiers, rep, now, r.cfg.TierRelax, p.out.redPT != 0)
	if changed {
		r.counters.tierSwitches.Add(1)
		if !p.left.Load() && r.byID[p.id] == p {
			r.tierCount[old]--
			r.tierCount[p.ts.tier]++
		}
	}
	return p.ts.tier, changed
}

// Tier is the index in RoomConfig.Tiers of the participant's tier.
func (p *Participant) Tier() int {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return p.ts.tier
}

// Retransmit answers a NACK (RFC 4585) for packets of the participant's
// stream: each one still in its output's history is sent again, unchanged,
// through the participant's sink. It answers only while the participant's
// reported round trip is within RoomConfig.NACKMaxRTT (a later copy comes
// too late to play) and within NACKRate a second; it returns how many it
// sent. The packets come from the room's shared history: nothing is kept
// per participant but the sequence numbers.
func (p *Participant) Retransmit(seqs []uint16) int {
	r := p.room
	now := r.eng.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	c := &r.counters
	if p.left.Load() || p.sink == nil {
		return 0
	}
	if p.ts.rtt > r.cfg.NACKMaxRTT {
		c.nacksRefused.Add(uint64(len(seqs)))
		return 0
	}
	sent := 0
	for _, seq := range seqs {
		tick, src, ok := p.out.sentAt(seq)
		var payload []byte
		if ok {
			payload, ok = src.packetAt(tick)
		}
		if !ok || !p.ts.allowNACK(now, r.cfg.NACKRate) {
			c.nacksRefused.Add(1)
			continue
		}
		pt := p.out.payloadType
		if p.out.redPT != 0 {
			pt = p.out.redPT
			// A fresh buffer: the sink may hold it past this call, and a
			// NACK is rare and rate-limited.
			payload = src.appendRED(nil, tick, p.out.payloadType, r.tiers[src.tier].RED)
		}
		p.out.writeHeader(pt, false, seq, p.out.timestamp(tick))
		if err := p.sink.WriteRTP(p.out.header[:], payload); err != nil {
			c.sinkErrors.Add(1)
			continue
		}
		c.retransmitted.Add(1)
		sent++
	}
	return sent
}

// unwrapRED turns in.pkt, a RED packet (RFC 2198), into its primary Opus
// packet, after pushing its redundant blocks into the jitter buffer as the
// earlier packets they copy: where one of those was lost, its copy plays.
// A copy of a packet already held is a duplicate and goes unnoticed.
func (in *inputSide) unwrapRED(now time.Time, c *counters) bool {
	pt, primary, blocks, err := red.Parse(in.pkt.Payload, in.blocks[:0])
	if err != nil || pt != in.payloadType || len(primary) == 0 {
		return false
	}
	dur, err := codec.PacketSamples(primary)
	if err != nil {
		return false
	}
	for _, b := range blocks {
		if b.PayloadType != in.payloadType || len(b.Data) == 0 || b.TSOffset%uint32(dur) != 0 {
			continue // a block of another codec, or not whole packets back
		}
		back := b.TSOffset / uint32(dur)
		in.redPkt.Header = in.pkt.Header
		in.redPkt.SequenceNumber -= uint16(back)
		in.redPkt.Timestamp -= b.TSOffset
		in.redPkt.PayloadType = in.payloadType
		in.redPkt.Payload = b.Data
		if in.jb.Push(&in.redPkt, now) == jitter.Accepted {
			c.redRecovered.Add(1)
		}
	}
	in.pkt.Payload = primary
	in.pkt.PayloadType = in.payloadType
	return true
}

// ParticipantStats is a snapshot of a participant's state.
type ParticipantStats struct {
	ID         string
	Role       Role
	Muted      bool
	HandRaised bool
	GainDB     float64
	SSRC       uint32
	// Level is the RFC 6464 level of the participant's last frame: 0 (loud)
	// to 127 (silent).
	Level   uint8
	Mixed   bool          // the participant's voice was in the last tick's mix
	Private bool          // the participant hears its own mix-minus encoder
	Tier    int           // index in RoomConfig.Tiers
	Jitter  *jitter.Stats // the input jitter buffer's statistics; nil for listeners
}

// Stats returns a snapshot of the participant's state.
func (p *Participant) Stats() ParticipantStats {
	r := p.room
	r.mu.Lock()
	defer r.mu.Unlock()
	s := ParticipantStats{
		ID: p.id, Role: p.Role(), Muted: p.muted, HandRaised: p.HandRaised(),
		GainDB: p.gainDB, SSRC: p.out.ssrc, Level: mixer.SilentLevel,
		Private: p.private != nil, Tier: p.ts.tier,
	}
	if p.in != nil {
		s.Level = p.in.src.Level()
		s.Mixed = p.in.src.Mixed()
		js := p.in.jb.Stats()
		s.Jitter = &js
	}
	return s
}
