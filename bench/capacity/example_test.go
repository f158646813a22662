package capacity_test

import (
	"context"
	"fmt"
	"time"

	"github.com/handsup-audio/handsup/bench/capacity"
)

// A short run of one room, with the transport comparison: five listeners
// per measured room over the engine alone, plain RTP and WebRTC (pion
// clients on loopback). A figure from so few listeners is noise; the
// command's default is 200. Every listener hears every packet.
func ExampleRun() {
	res, err := capacity.Run(context.Background(), capacity.Config{
		Rooms: 1, Speakers: 2, Active: 1, Listeners: 10, Duration: time.Second, Seed: 1,
		TransportListeners: 5,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("listener packets per tick:", res.ListenerPacketsPerTick)
	for _, c := range res.Transports.Transports {
		fmt.Printf("%s: delivered %.0f%%, %d listeners short\n", c.Transport, c.DeliveredPct, c.ListenersShort)
	}
	// Output:
	// listener packets per tick: 10
	// engine: delivered 100%, 0 listeners short
	// rtp: delivered 100%, 0 listeners short
	// webrtc: delivered 100%, 0 listeners short
}
