package engine_test

import (
	"fmt"
	"math"
	"time"

	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/engine"
)

// Embedding the engine: a room, a speaker and a listener with sinks, RTP
// in and out. A server runs the clock with go eng.Run(ctx), which ticks
// every room every 20 ms; here the engine reads a clock the example moves
// and ticks by hand, so the run is exact.
func Example() {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	eng := engine.New(engine.Config{Now: func() time.Time { return now }})
	defer eng.Close()

	room, err := eng.NewRoom("town-hall", engine.RoomConfig{TopN: 4, MaxSpeakers: 10})
	if err != nil {
		panic(err)
	}

	// Outgoing RTP: a 12-byte header of the participant's own plus a
	// payload that may be shared. A Sink must not block; payload is stable
	// until the room's next tick, header only during the call. Errors are
	// counted. A server writes to its socket here (or batches with
	// session/rtpudp); these count the packets. Alice, alone on stage,
	// hears her own mix-minus, which is silent: about 200 ms in, its
	// encoder's DTX frames are not sent (RoomConfig.NoDTX).
	var aliceGot, bobGot int
	sink := func(got *int) engine.Sink {
		return engine.SinkFunc(func(header, payload []byte) error {
			*got++ // conn.WriteToUDP(append(header, payload...), addr)
			return nil
		})
	}
	alice, err := room.Join("alice", engine.ParticipantConfig{Role: engine.Speaker, Sink: sink(&aliceGot)})
	if err != nil {
		panic(err)
	}
	bob, err := room.Join("bob", engine.ParticipantConfig{Role: engine.Listener, Sink: sink(&bobGot)})
	if err != nil {
		panic(err)
	}

	// Incoming RTP (Opus, payload type 111 by default), from any goroutine.
	// Malformed packets, wrong payload types and listeners' audio are
	// dropped, counted by reason, and answered with an error; never a
	// panic. Alice sends 20 ms of a 440 Hz tone before each tick.
	enc, err := codec.NewEncoder(codec.EncoderConfig{})
	if err != nil {
		panic(err)
	}
	var pcm [codec.FrameSamples]int16
	opus := make([]byte, codec.MaxPacketBytes)
	for tick := range 25 {
		for i := range pcm {
			pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(tick*codec.FrameSamples+i)/codec.SampleRate))
		}
		n, err := enc.Encode(pcm[:], opus)
		if err != nil {
			panic(err)
		}
		datagram, _ := (&rtp.Packet{
			Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(tick),
				Timestamp: uint32(tick * codec.FrameSamples), SSRC: 0xA11CE},
			Payload: opus[:n],
		}).Marshal()
		if err := alice.WriteRTP(datagram); err != nil {
			panic(err)
		}
		now = now.Add(engine.TickInterval)
		eng.Tick()
	}
	snap := room.Snapshot()
	fmt.Println("in", snap.Ticks, "ticks alice got", aliceGot, "packets, bob", bobGot)
	fmt.Println("packets in:", snap.Counters.PacketsIn, "alice in the mix:", snap.Speakers[0].Mixed)

	bob.RaiseHand()                 // hands up
	_ = bob.SetRole(engine.Speaker) // on stage, hand lowered; his stream stays continuous
	alice.SetMuted(true)
	snap = room.Snapshot() // roles, hands, levels, jitter stats
	fmt.Println("speakers:", snap.ByRole[engine.Speaker], "muted:", snap.Muted, "hands up:", snap.HandsUp)
	// Output:
	// in 25 ticks alice got 13 packets, bob 25
	// packets in: 25 alice in the mix: true
	// speakers: 2 muted: 1 hands up: 0
}
