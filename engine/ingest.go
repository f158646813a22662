package engine

import (
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/jitter"
	"github.com/handsup-audio/handsup/mixer"
	"github.com/handsup-audio/handsup/red"
)

// inputSide is what a contributing participant needs to be heard: the
// parser state for WriteRTP, the player (jitter buffer and decoder) and the
// mixer source. Listeners do not carry one, so a large audience costs
// little.
type inputSide struct {
	payloadType uint8
	redPT       uint8 // 0: the participant sends no RED
	levelExt    uint8 // RFC 6464 header extension id; 0: none

	// reported is the last RFC 6464 byte the client sent (V bit and
	// level) | reportedSet; 0 before the first.
	reported atomic.Uint32

	mu  sync.Mutex // serialises WriteRTP's reused packet struct and unwrapper
	pkt rtp.Packet
	red red.Unwrapper

	player *jitter.Player // pushed by WriteRTP, played by the tick
	src    *mixer.Source

	// The buffer's delay sum and emitted count at the last delay sample
	// (the tick's, once a second).
	delaySum     float64
	delayEmitted uint64
}

// sampleDelay observes the mean delay of the samples the speaker's buffer
// released since the last sample; nothing when it released none (silence,
// DTX) or its stream restarted.
func (in *inputSide) sampleDelay(h *histogram) {
	st := in.player.Buffer().Stats()
	if st.JitterBufferEmittedCount > in.delayEmitted && st.JitterBufferDelay >= in.delaySum {
		h.observe((st.JitterBufferDelay - in.delaySum) / float64(st.JitterBufferEmittedCount-in.delayEmitted))
	}
	in.delaySum, in.delayEmitted = st.JitterBufferDelay, st.JitterBufferEmittedCount
}

// newInputSideLocked gives p, taking the stage, its player and a source in
// the room's mix.
func (r *Room) newInputSideLocked(p *Participant) (*inputSide, error) {
	player, err := jitter.NewPlayer(jitter.PlayerConfig{Buffer: r.cfg.Jitter})
	if err != nil {
		return nil, err
	}
	in := &inputSide{
		payloadType: p.out.payloadType,
		redPT:       p.out.redPT,
		levelExt:    p.levelExt,
		player:      player,
		src:         r.mix.AddSource(),
	}
	in.src.SetGain(dbToLinear(p.gainDB))
	return in, nil
}

// WriteRTP takes one incoming RTP packet from the participant. It is safe
// from any goroutine and does not keep buf. Packets the room cannot use are
// counted and dropped; the error says why (ErrMalformedRTP, ErrPayloadType,
// ErrNotSpeaker, ErrLeft, ErrJitterDrop). A RED packet (RFC 2198, when the
// participant's REDPayloadType is set) is unwrapped: its redundant blocks
// go into the jitter buffer as the earlier packets they copy, filling
// losses, then its primary.
func (p *Participant) WriteRTP(buf []byte) error {
	c := &p.room.counters
	c.packetsIn.Add(1)
	c.bytesIn.Add(uint64(len(buf)))
	if p.left.Load() {
		c.dropped[DropLeft].Add(1)
		return ErrLeft
	}
	in := p.in.Load()
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
	if in.levelExt != 0 {
		in.readLevel(c)
	}
	now := p.room.eng.now()
	jb := in.player.Buffer()
	switch {
	case in.pkt.PayloadType == in.payloadType:
	case in.redPT != 0 && in.pkt.PayloadType == in.redPT:
		copies, err := in.red.Unwrap(&in.pkt, in.payloadType)
		if err != nil {
			c.dropped[DropMalformed].Add(1)
			return ErrMalformedRTP
		}
		// A copy of a packet already held is a duplicate, and unremarkable.
		for i := range copies {
			if jb.Push(&copies[i], now) == jitter.Accepted {
				c.redRecovered.Add(1)
			}
		}
	default:
		c.dropped[DropPayloadType].Add(1)
		return ErrPayloadType
	}
	switch jb.Push(&in.pkt, now) {
	case jitter.Duplicate:
		c.dropped[DropDuplicate].Add(1)
	case jitter.Late:
		c.dropped[DropLate].Add(1)
	case jitter.Malformed:
		c.dropped[DropBadOpus].Add(1)
	case jitter.Overflow:
		c.dropped[DropOverflow].Add(1)
	case jitter.Outlier:
		c.dropped[DropOutlier].Add(1)
	default:
		return nil
	}
	return ErrJitterDrop
}

// reportedSet marks inputSide.reported as holding a level.
const reportedSet = 1 << 8

// readLevel keeps the RFC 6464 audio level of the packet just parsed, when
// it carries one: one byte, the V bit and the level. Any other length is
// counted and ignored. It allocates nothing.
func (in *inputSide) readLevel(c *counters) {
	b := in.pkt.GetExtension(in.levelExt)
	switch {
	case b == nil: // none in this packet
	case len(b) != 1:
		c.badAudioLevels.Add(1)
	default:
		in.reported.Store(uint32(b[0]) | reportedSet)
	}
}
