package engine_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/internal/fakeclock"
	"github.com/handsup-audio/handsup/red"
)

// FuzzWriteRTP: whatever a speaker sends, between its real packets,
// nothing panics, a refusal is one of WriteRTP's documented errors, and
// the room's listener keeps getting a stream that decodes.
func FuzzWriteRTP(f *testing.F) {
	enc, err := codec.NewEncoder(codec.EncoderConfig{})
	if err != nil {
		f.Fatal(err)
	}
	pcm := make([]int16, codec.FrameSamples)
	buf := make([]byte, codec.MaxPacketBytes)
	n, _ := enc.Encode(pcm, buf)
	opus := append([]byte(nil), buf[:n]...)
	pkt := func(h rtp.Header, payload []byte) []byte {
		h.Version = 2
		b, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(pkt(rtp.Header{PayloadType: 111, SequenceNumber: 3, Timestamp: 3 * 960, SSRC: 9}, opus))
	f.Add(pkt(rtp.Header{PayloadType: 111, SequenceNumber: 30003, Timestamp: 3 * 960, SSRC: 9}, opus))
	f.Add(pkt(rtp.Header{PayloadType: 111, SequenceNumber: 3, Timestamp: 3*960 + 96000, SSRC: 9}, opus))
	ext := rtp.Header{PayloadType: 111, SequenceNumber: 3, Timestamp: 3 * 960, SSRC: 10, CSRC: []uint32{1, 2}}
	if err := ext.SetExtension(1, []byte{0x85}); err != nil {
		f.Fatal(err)
	}
	f.Add(pkt(ext, opus))
	f.Add(pkt(rtp.Header{PayloadType: 100, SequenceNumber: 3, Timestamp: 3 * 960, SSRC: 9},
		red.Append(nil, 111, opus, red.Block{PayloadType: 111, TSOffset: 960, Data: opus})))
	f.Add(pkt(rtp.Header{PayloadType: 111, SequenceNumber: 3, Timestamp: 3 * 960, SSRC: 9}, []byte{31<<3 | 3, 0x3f}))
	f.Add([]byte{0x80, 111, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		clock := fakeclock.New(time.Unix(1_700_000_000, 0))
		eng := engine.New(engine.Config{Workers: 1, Now: clock.Now})
		defer eng.Close()
		room, err := eng.NewRoom("r", engine.RoomConfig{NoDTX: true})
		if err != nil {
			t.Fatal(err)
		}
		dec, err := codec.NewDecoder()
		if err != nil {
			t.Fatal(err)
		}
		out := make([]int16, codec.MaxFrameSamples)
		got := 0
		_, err = room.Join("l", engine.ParticipantConfig{Sink: engine.SinkFunc(func(_, payload []byte) error {
			if _, err := dec.Decode(payload, out); err != nil {
				t.Errorf("the listener's stream does not decode: %v", err)
			}
			got++
			return nil
		})})
		if err != nil {
			t.Fatal(err)
		}
		s, err := room.Join("s", engine.ParticipantConfig{Role: engine.Speaker, REDPayloadType: 100, AudioLevelExtID: 1})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			real := pkt(rtp.Header{PayloadType: 111, SequenceNumber: uint16(i), Timestamp: uint32(i * 960), SSRC: 9}, opus)
			_ = s.WriteRTP(real)
			if i == 2 {
				switch err := s.WriteRTP(data); {
				case err == nil, errorIsAny(err, engine.ErrMalformedRTP, engine.ErrPayloadType, engine.ErrJitterDrop):
				default:
					t.Errorf("WriteRTP: undocumented error %v", err)
				}
			}
			clock.Advance(engine.TickInterval)
			eng.Tick()
		}
		if got != 6 {
			t.Errorf("the listener got %d packets in 6 ticks", got)
		}
	})
}

func errorIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}
