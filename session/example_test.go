package session_test

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/session"
	"github.com/handsup-audio/handsup/session/rtpudp"
)

// A room with two plain-RTP participants over UDP on loopback, RTCP
// wired: alice speaks, bob listens and reports what he hears. Real
// servers call go eng.Run(ctx) and go sessions.Run(ctx) instead of
// ticking by hand.
func Example() {
	udp, _ := rtpudp.Listen(rtpudp.Config{Addr: "127.0.0.1:0", ReadOnDrain: true})
	go udp.Serve(context.Background())
	defer udp.Close()
	// Each tick first reads what arrived (Config.ReadOnDrain).
	eng := engine.New(engine.Config{BeforeTick: udp.Drain})
	defer eng.Close()
	sessions := session.New(eng, session.Config{})
	batch := udp.NewBatch() // the room's sends leave in sendmmsg batches
	room, _ := sessions.NewRoom("demo", engine.RoomConfig{AfterTick: batch.Flush})

	join := func(id string, role engine.Role) (*net.UDPConn, *session.Member) {
		conn, _ := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		peer, _ := udp.AddPeer(conn.LocalAddr().(*net.UDPAddr).AddrPort(), netip.AddrPort{}, batch)
		m, _ := room.Join(id, engine.ParticipantConfig{Role: role}, peer)
		return conn, m
	}
	alice, _ := join("alice", engine.Speaker)
	bob, bobM := join("bob", engine.Listener)
	server := net.UDPAddrFromAddrPort(udp.LocalAddr())

	// alice says 440 Hz for a second, a packet per tick.
	enc, _ := codec.NewEncoder(codec.EncoderConfig{})
	pcm, buf := make([]int16, codec.FrameSamples), make([]byte, codec.MaxPacketBytes)
	for i := range 50 {
		for j := range pcm {
			pcm[j] = int16(8000 * math.Sin(2*math.Pi*440*float64(i*len(pcm)+j)/codec.SampleRate))
		}
		n, _ := enc.Encode(pcm, buf)
		pkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(i),
			Timestamp: uint32(i * len(pcm)), SSRC: 1}, Payload: buf[:n]}).Marshal()
		alice.WriteToUDP(pkt, server)
		for j := 0; j < 5000 && room.Counters().PacketsIn <= uint64(i); j++ {
			time.Sleep(time.Millisecond) // until it lands
			udp.Drain()
		}
		eng.Tick() // its Drain finds nothing more: read above, to wait for it
	}
	bob.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := bob.Read(buf)
	fmt.Println("bob received audio:", err == nil)

	// bob reports 10% loss: the room moves him to a tier with FEC.
	rr, _ := (&rtcp.ReceiverReport{SSRC: 2, Reports: []rtcp.ReceptionReport{{
		SSRC: bobM.Participant().SSRC(), FractionLost: 26}}}).Marshal()
	bob.WriteToUDP(rr, server)
	for i := 0; i < 5000 && bobM.Participant().Tier() == 0; i++ {
		time.Sleep(time.Millisecond) // until the report lands
		udp.Drain()                  // as the next tick would
	}
	fmt.Println("bob's tier:", room.Config().Tiers[bobM.Participant().Tier()].Name)
	// Output:
	// bob received audio: true
	// bob's tier: mid
}
