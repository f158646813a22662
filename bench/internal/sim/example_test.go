package sim_test

import (
	"encoding/binary"
	"fmt"

	"github.com/handsup-audio/handsup/bench/internal/sim"
	"github.com/handsup-audio/handsup/bench/signal"
)

// A talking speaker's client: a packet every 20 ms, the marker on the
// first, sequence numbers and timestamps counting on.
func ExampleSender() {
	st, err := sim.EncodeStream(signal.NewVoice(1), 3)
	if err != nil {
		panic(err)
	}
	s := sim.NewSender(&st, 42, 100, 0)
	buf := make([]byte, 12+1500)
	for range 4 { // the stream loops after its 3 frames
		pkt := s.Next(buf)
		fmt.Printf("seq %d ts %d marker %v\n", binary.BigEndian.Uint16(pkt[2:]), binary.BigEndian.Uint32(pkt[4:]), pkt[1]&0x80 != 0)
	}
	// Output:
	// seq 100 ts 0 marker true
	// seq 101 ts 960 marker false
	// seq 102 ts 1920 marker false
	// seq 103 ts 2880 marker false
}
