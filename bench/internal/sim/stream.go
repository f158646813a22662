package sim

import (
	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
)

// Stream is one simulated speaker's pre-encoded packets, one entry per
// 20 ms frame, played in a loop.
type Stream struct {
	data []byte  // the payloads back to back
	off  []int32 // frame i's payload is data[off[i]:off[i+1]]
	send []bool  // whether the client sends frame i (it skips most DTX frames)
}

// Frames is the stream's length in frames.
func (s *Stream) Frames() int { return len(s.send) }

// Frame is frame i's payload and whether the client sends it.
func (s *Stream) Frame(i int) (payload []byte, send bool) {
	return s.data[s.off[i]:s.off[i+1]], s.send[i]
}

// EncodeStream encodes frames of v as a client would send them, or of
// silence when v is nil. A silent speaker's encoder has DTX on and, as
// WebRTC does, the client sends the first DTX packet of a run (so the
// receiver knows the silence is meant) and skips the rest of the ≤2-byte
// packets but one every 400 ms (DTXKeepAlive). A client's sequence
// numbers count the packets it sends; its timestamps count every frame.
func EncodeStream(v *signal.Voice, frames int) (Stream, error) {
	enc, err := codec.NewEncoder(codec.EncoderConfig{DTX: v == nil})
	if err != nil {
		return Stream{}, err
	}
	pcm := make([]int16, codec.FrameSamples)
	buf := make([]byte, codec.MaxPacketBytes)
	if v == nil {
		// Settle the encoder into DTX first, so the loop is all steady
		// state: no start-up packets replayed at each wrap.
		for range 50 {
			if _, err := enc.Encode(pcm, buf); err != nil {
				return Stream{}, err
			}
		}
	}
	s := Stream{off: make([]int32, 1, frames+1), send: make([]bool, 0, frames)}
	sinceSent, inDTX := 0, false
	for range frames {
		if v != nil {
			v.Fill(pcm)
		}
		n, err := enc.Encode(pcm, buf)
		if err != nil {
			return Stream{}, err
		}
		send := true
		if codec.IsDTX(buf[:n]) {
			send = !inDTX || sinceSent+1 >= DTXKeepAlive
			inDTX = true
		} else {
			inDTX = false
		}
		if send {
			sinceSent = 0
		} else {
			sinceSent++
		}
		s.data = append(s.data, buf[:n]...)
		s.off = append(s.off, int32(len(s.data)))
		s.send = append(s.send, send)
	}
	return s, nil
}

// Sender plays a Stream in a loop as its client sends it: a packet per
// frame it sends, sequence numbers counting those, timestamps every frame,
// the marker on the first packet after skipped DTX frames.
type Sender struct {
	stream *Stream
	ssrc   uint32
	frame  int
	seq    uint16
	ts     uint32
	marker bool // the next sent packet starts a talkspurt
}

// NewSender plays st from its first frame with the client's SSRC and
// first sequence number and timestamp; the first packet has the marker.
func NewSender(st *Stream, ssrc uint32, seq uint16, ts uint32) Sender {
	return Sender{stream: st, ssrc: ssrc, seq: seq, ts: ts, marker: true}
}

// Next writes the packet of the sender's next 20 ms into buf, which holds
// 12 + codec.MaxPacketBytes bytes, and returns it; nil for a frame the
// client skips.
func (s *Sender) Next(buf []byte) []byte {
	payload, send := s.stream.Frame(s.frame)
	if s.frame++; s.frame == s.stream.Frames() {
		s.frame = 0
	}
	ts := s.ts
	s.ts += codec.FrameSamples
	if !send {
		s.marker = true
		return nil
	}
	PutRTPHeader(buf[:12], 111, s.marker, s.seq, ts, s.ssrc)
	s.marker = false
	s.seq++
	n := copy(buf[12:], payload)
	return buf[:12+n]
}
