package sim_test

import (
	"testing"

	"github.com/handsup-audio/handsup/bench/internal/sim"
	"github.com/handsup-audio/handsup/bench/signal"
)

// The stream a silent speaker's client sends: mostly skipped DTX frames,
// one packet at least every 400 ms.
func TestSilentStreamSendsSparsely(t *testing.T) {
	s, err := sim.EncodeStream(nil, 500)
	if err != nil {
		t.Fatal(err)
	}
	sent, gap, longest := 0, 0, 0
	for i := range s.Frames() {
		payload, send := s.Frame(i)
		if !send {
			gap++
			longest = max(longest, gap)
			continue
		}
		gap = 0
		sent++
		if len(payload) == 0 {
			t.Fatalf("frame %d: empty payload sent", i)
		}
	}
	if sent == 0 || sent > 500/5 || longest >= sim.DTXKeepAlive {
		t.Fatalf("silence: %d of 500 frames sent, longest gap %d frames; want few, and gaps under 400 ms", sent, longest)
	}
}

// A talker's client sends every frame, and its sequence numbers and
// timestamps count on by one packet and by one frame.
func TestSenderNumbersItsPackets(t *testing.T) {
	st, err := sim.EncodeStream(signal.NewVoice(1), 20)
	if err != nil {
		t.Fatal(err)
	}
	s := sim.NewSender(&st, 7, 65534, 1000)
	buf := make([]byte, 12+1500)
	for i := range 25 {
		pkt := s.Next(buf)
		if pkt == nil {
			t.Fatalf("frame %d of a talker not sent", i)
		}
		seq, ts := uint16(pkt[2])<<8|uint16(pkt[3]), uint32(pkt[4])<<24|uint32(pkt[5])<<16|uint32(pkt[6])<<8|uint32(pkt[7])
		if want := uint16(65534 + i); seq != want || ts != 1000+uint32(i)*960 || (pkt[1]&0x80 != 0) != (i == 0) {
			t.Fatalf("packet %d: seq %d ts %d marker %v; want seq %d ts %d, the marker on the first only", i, seq, ts, pkt[1]&0x80 != 0, want, 1000+i*960)
		}
	}
}
