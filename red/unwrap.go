package red

import (
	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/codec"
)

// Unwrapper turns RED packets back into the Opus packets they carry: the
// primary, and each redundant block as the earlier packet it copies, so a
// receiver pushes the copies into its jitter buffer where they fill
// losses (a copy of a packet it already holds is a duplicate). Its zero
// value is ready; it keeps the parsed blocks and the rebuilt packets, so
// unwrapping does not allocate. One Unwrapper serves one goroutine at a
// time.
type Unwrapper struct {
	blocks [MaxBlocks]Block
	copies [MaxBlocks]rtp.Packet
}

// Unwrap turns pkt, a RED packet whose primary is Opus of payload type pt,
// into that primary in place (pkt's Payload and PayloadType change), and
// returns the redundant blocks that copy whole earlier Opus packets, as
// those packets: pkt's header with the sequence number and timestamp moved
// back and payload type pt. Blocks of another payload type, empty ones,
// and ones whose timestamp offset is not a whole (non-zero) number of the
// primary's packets back are left out. The copies, like pkt's new payload, point
// into pkt's old payload; they are valid until the next Unwrap. It returns
// ErrMalformed, leaving pkt as it was, when the payload is not RED or its
// primary is not an Opus packet of payload type pt.
func (u *Unwrapper) Unwrap(pkt *rtp.Packet, pt uint8) (copies []rtp.Packet, err error) {
	primaryPT, primary, blocks, err := Parse(pkt.Payload, u.blocks[:0])
	if err != nil || primaryPT != pt || len(primary) == 0 {
		return nil, ErrMalformed
	}
	dur, err := codec.PacketSamples(primary)
	if err != nil {
		return nil, ErrMalformed
	}
	n := 0
	for _, b := range blocks {
		if b.PayloadType != pt || len(b.Data) == 0 || b.TSOffset == 0 || b.TSOffset%uint32(dur) != 0 {
			continue // a block of another codec, or not whole packets back (none back: the primary's own time)
		}
		c := &u.copies[n]
		c.Header = pkt.Header
		c.SequenceNumber -= uint16(b.TSOffset / uint32(dur))
		c.Timestamp -= b.TSOffset
		c.PayloadType = pt
		c.Payload = b.Data
		n++
	}
	pkt.Payload = primary
	pkt.PayloadType = pt
	return u.copies[:n], nil
}
