package webrtc_test

import (
	"context"
	"fmt"
	"time"

	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/internal/webrtctest"
	"github.com/handsup-audio/handsup/session"
	"github.com/handsup-audio/handsup/session/webrtc"
)

// A WHEP listener joins a room: the transport answers the client's offer,
// the peer puts the negotiated SSRC and payload type in the participant's
// config, and the room binds the peer as the member's link. The manager
// flushes the transport's batch at the end of each room's tick. A pion client
// stands in for the browser; a real server runs eng.Run and sessions.Run.
func Example() {
	tr, _ := webrtc.Listen(webrtc.Config{
		UDPAddr:  "127.0.0.1:0",
		OnFailed: func(p *webrtc.Peer) { /* kick its member with the reason "timeout" */ },
	})
	defer tr.Close()
	eng := engine.New(engine.Config{})
	defer eng.Close()
	// Rooms flush the transport's send batch after each tick.
	sessions := session.New(eng, session.Config{Flushers: []session.Flusher{tr}})
	room, _ := sessions.NewRoom("demo", engine.RoomConfig{})

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	browser, _ := webrtctest.New(webrtctest.Options{}) // receive only
	defer browser.Close()
	offer, _ := browser.Offer(ctx) // POST /whep carries this

	peer, answer, err := tr.Answer(ctx, offer) // 201 carries the answer
	if err != nil {
		fmt.Println(err)
		return
	}
	cfg := engine.ParticipantConfig{Role: engine.Listener}
	peer.Configure(&cfg)
	m, _ := room.Join("bob", cfg, peer)
	_ = browser.Accept(answer)
	fmt.Println("connected:", browser.WaitConnected(ctx) == nil)

	for range 10 { // the room's ticks reach bob over SRTP
		eng.Tick()
		time.Sleep(20 * time.Millisecond)
	}
	for browser.Packets() == 0 && ctx.Err() == nil {
		eng.Tick()
		time.Sleep(20 * time.Millisecond)
	}
	fmt.Println("bob's stream:", browser.SSRCs()[m.Participant().SSRC()] > 0)
	// Output:
	// connected: true
	// bob's stream: true
}
