package session_test

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/session"
)

// FuzzReceive feeds a speaker and a listener whatever datagrams arrive
// from their addresses, RTP and RTCP, and ticks the room between them:
// nothing panics, a listener's RTP is counted and dropped, and the room
// keeps sending the listener its stream.
func FuzzReceive(f *testing.F) {
	seed := func(p interface{ Marshal() ([]byte, error) }) []byte {
		b, err := p.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	opus := []byte{0xfc, 0xff, 0xfe}
	f.Add(seed(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 1, Timestamp: 960, SSRC: 7}, Payload: opus}), false)
	f.Add(seed(&rtcp.ReceiverReport{SSRC: 2, Reports: []rtcp.ReceptionReport{{SSRC: 1, FractionLost: 40, Jitter: 100}}}), true)
	f.Add(seed(&rtcp.TransportLayerNack{SenderSSRC: 2, MediaSSRC: 1, Nacks: []rtcp.NackPair{{PacketID: 3, LostPackets: 0xffff}}}), true)
	f.Add(seed(&rtcp.SenderReport{SSRC: 7, NTPTime: 1 << 40, RTPTime: 960, PacketCount: 1, OctetCount: 3}), false)
	f.Add([]byte{0x80, 201, 0xff, 0xff}, true) // a length past the end
	f.Add([]byte{0x9f, 111, 0, 0}, false)      // a CSRC count past the end
	f.Fuzz(func(t *testing.T, pkt []byte, toListener bool) {
		w := newWorld(t, session.Config{})
		speaker, _ := w.join("s", engine.Speaker)
		listener, ll := w.join("l", engine.Listener)
		tk := newTalker(t)
		for i := range 3 {
			speaker.ReceiveRTP(tk.next(t))
			target := speaker
			if toListener {
				target = listener
			}
			if len(pkt) >= 2 && pkt[1] >= 192 && pkt[1] <= 223 {
				target.ReceiveRTCP(pkt)
			} else {
				target.ReceiveRTP(pkt)
			}
			w.clk.Advance(time.Duration(i+1) * engine.TickInterval)
			w.eng.Tick()
		}
		if n, _, _, _ := ll.state(); n == 0 {
			t.Fatal("the listener got no stream")
		}
	})
}
