package engine

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/mixer"
	"github.com/handsup-audio/handsup/red"
)

// Sink receives a participant's outgoing RTP packets: a 12-byte header of
// the participant's own and a payload that may be shared with many others.
//
// The contract: WriteRTP must not block (queue or drop instead: the room's
// tick waits for it). header is valid only during the call; payload stays
// unchanged until the room's next tick starts (and some ticks longer), so a
// transport may batch the packets of one tick without copying payloads. A returned error is counted
// and the participant stays in the room.
type Sink interface {
	WriteRTP(header, payload []byte) error
}

// Prefetcher is a Sink whose WriteRTP reads per-listener state that a tick
// finds out of the caches (a WebRTC peer's send state and SRTP keys): the
// engine calls Prefetch on the sinks it is about to write to, so that
// their memory loads overlap its work on the listeners before them.
// Prefetch must be cheap, safe to call at any time from the tick's
// goroutine, and change nothing.
type Prefetcher interface {
	// Prefetch starts loading what WriteRTP will read: ahead is 2 (load
	// the sink's own state, a few listeners before its WriteRTP) or 1
	// (load what that state points to, the state loaded since).
	Prefetch(ahead int)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(header, payload []byte) error

// WriteRTP calls f.
func (f SinkFunc) WriteRTP(header, payload []byte) error { return f(header, payload) }

// outStream is one participant's outgoing RTP stream. Its sequence numbers
// and timestamps follow the room's ticks, whichever encoder fed it.
type outStream struct {
	// Read and written by every send: kept together, ahead of runs.
	ssrc        uint32
	payloadType uint8 // Opus
	redPT       uint8 // RED (RFC 2198) when the participant takes it; 0 otherwise
	seq         uint16
	tsBase      uint32 // timestamp at the room tick joinTick
	marker      bool   // set the marker bit on the next packet: a talkspurt starts
	header      [12]byte
	joinTick    uint64
	lastSrc     *encodedOutput
	lastT       uint64
	run         int // index in runs of the current run

	// For RTCP sender reports: packets and payload octets sent. Plain
	// fields under the room lock; an atomic add per send would cost more
	// than the rest of a listener's send.
	packets, octets uint64

	// runs remember which output fed which packets, so a NACK is answered
	// from that output's history, with no copy of any payload per
	// participant. A run is a stretch of packets of consecutive ticks from
	// one output; a new one starts only on a switch or after a DTX gap, so
	// a send usually writes nothing here.
	runs [4]sendRun
}

// sendRun is a stretch of a stream's packets: sequence numbers from seq
// on carried ticks from tick on, one each, all from src.
type sendRun struct {
	seq  uint16
	tick uint64
	src  *encodedOutput
}

// sentAt finds the tick and output of the stream's packet seq, if it is
// one of the packets sent in the last runs.
func (o *outStream) sentAt(seq uint16) (uint64, *encodedOutput, bool) {
	end := o.seq // one past the newest packet of the current run
	for k := range len(o.runs) {
		r := &o.runs[(o.run-k+len(o.runs))%len(o.runs)]
		if r.src == nil {
			return 0, nil, false
		}
		n := end - r.seq // packets in this run
		if d := seq - r.seq; d < n {
			return r.tick + uint64(d), r.src, true
		}
		end = r.seq
	}
	return 0, nil, false
}

func (o *outStream) timestamp(t uint64) uint32 {
	return o.tsBase + uint32(t-o.joinTick)*codec.FrameSamples
}

// send frames src's packet of room tick t in this stream's header and
// hands it to sink: plain Opus, or RED around it for a participant that
// takes RED. DTX packets are not sent; the timestamp still advances, and
// the next packet carries the marker, as RFC 7587 asks. The tally, not the
// room's atomics, counts the packet: a tick sends to thousands of listeners.
func (o *outStream) send(t uint64, src *encodedOutput, redDistance int, sink Sink, n *tally) {
	if codec.IsDTX(src.payload) {
		o.marker = true
		return
	}
	pt, payload := o.payloadType, src.payload
	if o.redPT != 0 {
		pt, payload = o.redPT, src.red(o.payloadType, redDistance)
	}
	marker := o.marker
	o.marker = false
	seq := o.seq
	o.seq++
	if src != o.lastSrc || t != o.lastT+1 {
		o.run = (o.run + 1) % len(o.runs)
		o.runs[o.run] = sendRun{seq: seq, tick: t, src: src}
		o.lastSrc = src
	}
	o.lastT = t
	if sink == nil {
		return
	}
	o.writeHeader(pt, marker, seq, o.timestamp(t))
	if err := sink.WriteRTP(o.header[:], payload); err != nil {
		n.errors++
		return
	}
	n.packets++
	n.bytes += uint64(len(o.header) + len(payload))
	o.packets++
	o.octets += uint64(len(payload))
}

func (o *outStream) writeHeader(pt uint8, marker bool, seq uint16, ts uint32) {
	h := &o.header
	h[0] = 0x80 // version 2, no padding, no extension, no CSRC
	h[1] = pt & 0x7f
	if marker {
		h[1] |= 0x80
	}
	binary.BigEndian.PutUint16(h[2:], seq)
	binary.BigEndian.PutUint32(h[4:], ts)
	binary.BigEndian.PutUint32(h[8:], o.ssrc)
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

// history is how many ticks of packets an output keeps: RED needs the last
// two, NACKs are answered up to 320 ms back.
const history = 16

// encodedOutput is one encoder's output stage: limiter, PCM, and its
// latest packets. Each tier's shared mix and each private mix-minus has one.
type encodedOutput struct {
	enc     *codec.Encoder
	lim     mixer.Limiter             // a private mix-minus's own
	pcm     [codec.FrameSamples]int16 // a private mix-minus's own
	tier    int                       // whose settings the encoder has
	dtx     bool                      // the encoder's DTX setting
	base    int                       // the complexity of the tier's settings
	cx      int                       // the encoder's complexity now
	tick    uint64                    // room tick of payload
	encoded uint64                    // room tick of the encoder's last call
	payload []byte                    // the tick's packet, a slice of hist
	hist    [history]struct {
		tick uint64
		n    int
		buf  [codec.MaxPacketBytes]byte
	}
	// RED payloads built this tick, by the Opus payload type inside.
	reds [2]struct {
		pt       uint8
		distance int
		tick     uint64
		buf      []byte
	}
}

// newOutput is an output stage for enc, which has tier's settings.
func newOutput(enc *codec.Encoder, tier int) *encodedOutput {
	o := &encodedOutput{enc: enc, tier: tier}
	o.tuned()
	return o
}

// tuned notes the settings o's encoder has been given.
func (o *encodedOutput) tuned() {
	cfg := o.enc.Config()
	o.dtx, o.base, o.cx = cfg.DTX, cfg.Complexity, cfg.Complexity
}

// encode turns pcm into the payload of room tick t, at most at complexity
// most (the engine shedding load; -1: the tier's), and says how long the
// encoder took (what shedding can relieve). On an encoder error the
// payload is empty (nothing is sent) and the error counted.
func (o *encodedOutput) encode(pcm []int16, t uint64, most int, c *counters) time.Duration {
	c.encodes.Add(1)
	want := o.base
	if most >= 0 {
		want = min(want, most)
	}
	if o.cx != want {
		if err := o.enc.SetComplexity(want); err != nil {
			c.encodeErrors.Add(1)
		} else {
			o.cx = want
		}
	}
	h := &o.hist[t%history]
	start := time.Now()
	n, err := o.enc.Encode(pcm, h.buf[:])
	took := time.Since(start)
	if err != nil {
		c.encodeErrors.Add(1)
		n = 0
	}
	h.tick, h.n = t, n
	o.tick, o.payload, o.encoded = t, h.buf[:n], t
	return took
}

// silentEvery is how often a private output whose mix-minus holds no
// voice, its encoder already in DTX, still encodes (skipSilence).
const silentEvery = 20

// skipSilence stands in for encoding a silent mix-minus once the encoder
// is in DTX (its last packet a DTX frame, not sent): most such encodes
// would only give another DTX frame, and a room whose one talker hears
// nobody else paid an encode a tick for it. The tick's packet is a DTX
// frame, not sent; one tick in silentEvery still encodes, so that the
// encoder's comfort noise still comes, if more rarely. It reports whether
// it skipped.
func (o *encodedOutput) skipSilence(t uint64) bool {
	if !o.dtx || !codec.IsDTX(o.payload) || o.tick+1 != t || t-o.encoded >= silentEvery {
		return false
	}
	h := &o.hist[t%history]
	h.tick, h.n = t, 0
	o.tick, o.payload = t, h.buf[:0]
	return true
}

// setDTX turns the encoder's DTX on or off, if it is not already.
func (o *encodedOutput) setDTX(on bool, c *counters) {
	if o.dtx == on {
		return
	}
	if err := o.enc.SetDTX(on); err != nil {
		c.encodeErrors.Add(1)
		return
	}
	o.dtx = on
}

// packetAt is the output's packet of room tick t, if still held.
func (o *encodedOutput) packetAt(t uint64) ([]byte, bool) {
	h := &o.hist[t%history]
	if h.tick != t || o.tick < t || o.tick-t >= history {
		return nil, false
	}
	return h.buf[:h.n], true
}

// red wraps the current packet in RED (RFC 2198) with up to distance
// earlier packets. It is built once per tick and Opus payload type, and
// shared by every participant of the output that takes RED.
func (o *encodedOutput) red(opusPT uint8, distance int) []byte {
	slot := &o.reds[0]
	for i := range o.reds {
		r := &o.reds[i]
		if r.pt == opusPT && r.distance == distance {
			if r.tick == o.tick && r.buf != nil {
				return r.buf
			}
			slot = r
			break
		}
		if r.tick < slot.tick {
			slot = r
		}
	}
	slot.pt, slot.distance, slot.tick = opusPT, distance, o.tick
	slot.buf = o.appendRED(slot.buf[:0], o.tick, opusPT, distance)
	return slot.buf
}

// maxREDBytes bounds a RED payload: the redundant blocks that would take
// it further are left out, the oldest first, so that a packet fits the
// smallest MTUs on the way (WebRTC budgets 1,200 bytes) and leaves whole;
// the plain RTP transport does not let the kernel fragment. Only tiers
// far above the default bitrates reach it.
const maxREDBytes = 1200

// appendRED builds the RED payload of tick t: the non-DTX packets of the
// distance ticks before it that fit within maxREDBytes, oldest first,
// then t's.
func (o *encodedOutput) appendRED(dst []byte, t uint64, opusPT uint8, distance int) []byte {
	primary, _ := o.packetAt(t)
	var blocks [2]red.Block
	nb, size := 0, 1+len(primary)                                        // the primary's one-byte header
	for d := 1; d <= min(distance, len(blocks)) && uint64(d) <= t; d++ { // newest first
		p, ok := o.packetAt(t - uint64(d))
		if !ok || codec.IsDTX(p) {
			continue
		}
		if size += 4 + len(p); size > maxREDBytes {
			break
		}
		blocks[nb] = red.Block{PayloadType: opusPT, TSOffset: uint32(d * codec.FrameSamples), Data: p}
		nb++
	}
	slices.Reverse(blocks[:nb])
	return red.Append(dst, opusPT, primary, blocks[:nb]...)
}
