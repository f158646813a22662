package engine

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/mixer"
)

// Sink receives a participant's outgoing RTP packets: a 12-byte header of
// the participant's own and a payload that may be shared with many others.
//
// The contract: WriteRTP must not block (queue or drop instead: the room's
// tick waits for it). header is valid only during the call; payload stays
// unchanged until the room's next tick starts, so a transport may batch the
// packets of one tick without copying payloads. A returned error is counted
// and the participant stays in the room.
type Sink interface {
	WriteRTP(header, payload []byte) error
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(header, payload []byte) error

// WriteRTP calls f.
func (f SinkFunc) WriteRTP(header, payload []byte) error { return f(header, payload) }

// outStream is one participant's outgoing RTP stream. Its sequence numbers
// and timestamps follow the room's ticks, whichever encoder fed it.
type outStream struct {
	ssrc        uint32
	payloadType uint8
	seq         uint16
	tsBase      uint32 // timestamp at the room tick joinTick
	joinTick    uint64
	marker      bool // set the marker bit on the next packet: a talkspurt starts
	header      [12]byte

	// For RTCP sender reports, read without the room lock: the timestamp
	// of the latest tick, and the packets and payload octets sent.
	lastTS          atomic.Uint32
	packets, octets atomic.Uint64
}

// send frames payload in this stream's header for room tick t and hands it
// to sink. DTX packets are not sent; the timestamp still advances, and the
// next packet carries the marker, as RFC 7587 asks. The tally, not the
// room's atomics, counts the packet: a tick sends to thousands of listeners.
func (o *outStream) send(t uint64, payload []byte, sink Sink, n *tally) {
	ts := o.tsBase + uint32(t-o.joinTick)*codec.FrameSamples
	o.lastTS.Store(ts)
	if codec.IsDTX(payload) {
		o.marker = true
		return
	}
	h := &o.header
	h[0] = 0x80 // version 2, no padding, no extension, no CSRC
	h[1] = o.payloadType & 0x7f
	if o.marker {
		h[1] |= 0x80
		o.marker = false
	}
	binary.BigEndian.PutUint16(h[2:], o.seq)
	binary.BigEndian.PutUint32(h[4:], ts)
	binary.BigEndian.PutUint32(h[8:], o.ssrc)
	o.seq++
	if sink == nil {
		return
	}
	if err := sink.WriteRTP(h[:], payload); err != nil {
		n.errors++
		return
	}
	n.packets++
	n.bytes += uint64(len(h) + len(payload))
	o.packets.Add(1)
	o.octets.Add(uint64(len(payload)))
}

// tally counts one tick's sends, added to the room's counters once.
type tally struct{ packets, bytes, errors uint64 }

func (n *tally) flush(c *counters) {
	c.packetsOut.Add(n.packets)
	c.bytesOut.Add(n.bytes)
	if n.errors > 0 {
		c.sinkErrors.Add(n.errors)
	}
}

// encodedOutput is one encoder's output stage: limiter, PCM and packet
// buffers. The room's shared output and each private mix-minus have one.
type encodedOutput struct {
	enc     *codec.Encoder
	lim     mixer.Limiter
	pcm     [codec.FrameSamples]int16
	buf     [codec.MaxPacketBytes]byte
	payload []byte // the tick's packet, a slice of buf
}

// encode turns o.pcm into o.payload. On an encoder error the payload is
// empty (nothing is sent) and the error counted.
func (o *encodedOutput) encode(c *counters) {
	c.encodes.Add(1)
	n, err := o.enc.Encode(o.pcm[:], o.buf[:])
	if err != nil {
		c.encodeErrors.Add(1)
		n = 0
	}
	o.payload = o.buf[:n]
}
