package engine

import (
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/internal/fakeclock"
)

// twin is one of two rooms a test feeds the same packets to compare
// what each does: a room on an engine of its own, on a fake clock from
// start, with one speaker and one listener whose packets go to listener.
type twin struct {
	clock   *fakeclock.Clock
	e       *Engine
	r       *Room
	speaker *Participant
}

func newTwin(t *testing.T, start time.Time, listener SinkFunc) *twin {
	t.Helper()
	w := &twin{clock: fakeclock.New(start)}
	w.e = New(Config{Now: w.clock.Now, Workers: 1})
	t.Cleanup(w.e.Close)
	var err error
	if w.r, err = w.e.NewRoom("r", RoomConfig{}); err != nil {
		t.Fatal(err)
	}
	none := SinkFunc(func(header, payload []byte) error { return nil })
	if w.speaker, err = w.r.Join("speaker", ParticipantConfig{Role: Speaker, Sink: none}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.r.Join("listener", ParticipantConfig{Role: Listener, Sink: listener}); err != nil {
		t.Fatal(err)
	}
	return w
}

// opusPacket is pcm encoded by enc as the RTP packet of frame seq of
// stream ssrc.
func opusPacket(t *testing.T, enc *codec.Encoder, pcm []int16, seq int, ssrc uint32) []byte {
	t.Helper()
	payload := make([]byte, codec.MaxPacketBytes)
	n, err := enc.Encode(pcm, payload)
	if err != nil {
		t.Fatal(err)
	}
	pkt, err := (&rtp.Packet{Header: rtp.Header{
		Version: 2, PayloadType: 111, SequenceNumber: uint16(seq), Timestamp: uint32(seq * codec.FrameSamples), SSRC: ssrc,
	}, Payload: payload[:n]}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return pkt
}
