package jitter_test

import (
	"fmt"
	"time"

	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/jitter"
)

// A stream of 20 ms packets, one every tick, the fourth lost on the way.
// The buffer waits out its start delay (80 ms by default, the frame about
// to play included), then answers one frame per tick: decode, conceal the
// loss, decode on, and conceal once the sender stops. Times are explicit:
// the example runs on its own clock.
func Example() {
	b := jitter.New(jitter.Config{})
	start := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	// A one-frame 20 ms CELT packet: the buffer reads the TOC byte for the
	// duration and does not decode.
	payload := []byte{0xF8, 0xFF, 0xFE}

	var pkt rtp.Packet
	for tick := range 14 {
		now := start.Add(time.Duration(tick) * 20 * time.Millisecond)
		if seq := tick; seq < 10 && seq != 3 {
			pkt.Header = rtp.Header{Version: 2, PayloadType: 111, SSRC: 0x1234,
				SequenceNumber: uint16(seq), Timestamp: uint32(seq * 960)}
			pkt.Payload = payload
			b.Push(&pkt, now)
		}
		f := b.Pop(now)
		fmt.Printf("at %3d ms: %s %d\n", tick*20, f.Kind, f.Samples)
	}

	st := b.Stats()
	fmt.Printf("received %d, lost %d, concealed %d samples in %d events\n",
		st.PacketsReceived, st.PacketsLost, st.ConcealedSamples, st.ConcealmentEvents)
	fmt.Println("target delay", b.TargetDelay())
	// Output:
	// at   0 ms: silence 960
	// at  20 ms: silence 960
	// at  40 ms: silence 960
	// at  60 ms: decode 960
	// at  80 ms: decode 960
	// at 100 ms: decode 960
	// at 120 ms: conceal 960
	// at 140 ms: decode 960
	// at 160 ms: decode 960
	// at 180 ms: decode 960
	// at 200 ms: decode 960
	// at 220 ms: decode 960
	// at 240 ms: decode 960
	// at 260 ms: conceal 960
	// received 9, lost 1, concealed 1920 samples in 2 events
	// target delay 80ms
}
