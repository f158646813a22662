package server

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/engine"
)

// TestMalformedDatagramsHarmNobody sends a speaker's tone through the real
// socket while malformed RTP and RTCP arrive from the speaker's own address,
// a second speaker's, a listener's and an undeclared one. Each is dropped
// under its documented counter, and the listener keeps hearing the tone.
func TestMalformedDatagramsHarmNobody(t *testing.T) {
	ts := startServer(t, "")
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	server := net.UDPAddrFromAddrPort(ts.s.RTPAddr())
	good := newUDPClient(t, server)
	bad := newUDPClient(t, server)
	lis := newUDPClient(t, server)
	stranger := newUDPClient(t, server)
	for _, j := range []struct {
		id, role string
		c        *udpClient
	}{{"good", "speaker", good}, {"bad", "speaker", bad}, {"lis", "listener", lis}} {
		ts.mustCall("POST", "/v1/rooms/r/participants",
			fmt.Sprintf(`{"id":%q,"role":%q,"rtp":{"addr":%q}}`, j.id, j.role, j.c.addr()), 201, nil)
	}

	rtp := func(c *udpClient, pt byte, payload ...byte) []byte {
		h := make([]byte, 12, 12+len(payload))
		c.header(h, pt)
		return append(h, payload...)
	}
	opus := []byte{0xfc, 0xff, 0xfe} // a valid 20 ms Opus TOC and frame bytes
	type datagram struct {
		name string
		from *udpClient
		pkt  []byte
	}
	var rtpMalformed = []datagram{
		{"empty", bad, []byte{}},
		{"one byte", bad, []byte{0x80}},
		{"truncated header", bad, rtp(bad, 111)[:11]},
		{"version 1", bad, append([]byte{0x40, 111}, make([]byte, 20)...)},
		{"version 0", bad, append([]byte{0x00, 111}, make([]byte, 20)...)},
		{"csrc count past the end", bad, append([]byte{0x8f, 111}, make([]byte, 14)...)},
		{"padding longer than the packet", bad, func() []byte {
			p := rtp(bad, 111, 0xfc, 1, 2, 200)
			p[0] |= 0x20
			return p
		}()},
		{"extension past the end", bad, func() []byte {
			p := rtp(bad, 111)
			p[0] |= 0x10
			return append(p, 0xbe, 0xde, 0x00, 0x40, 0xfc) // claims 256 bytes
		}()},
		{"extension header cut", bad, func() []byte {
			p := rtp(bad, 111)
			p[0] |= 0x10
			return append(p, 0xbe)
		}()},
		{"header only", bad, rtp(bad, 111)},
		{"rtcp with version 1", bad, []byte{0x40, 201, 0, 1, 0, 0, 0, 1}},
	}
	var payloadType = []datagram{
		{"payload type 96", bad, rtp(bad, 96, opus...)},
		{"payload type 0 (PCMU)", bad, rtp(bad, 0, opus...)},
	}
	var badOpus = []datagram{
		{"opus code 3 with no frames", bad, rtp(bad, 111, 0x03, 0x00)},
		{"opus code 3 over 120 ms", bad, rtp(bad, 111, 0x1b, 0x3f)},
		{"opus code 2 length past the end", bad, rtp(bad, 111, 0x02, 0xfb, 1)},
	}
	var oversized = []datagram{
		{"1600 bytes", bad, rtp(bad, 111, make([]byte, 1588)...)},
		{"9000 bytes", bad, rtp(bad, 111, make([]byte, 8988)...)},
	}
	var notSpeaker = []datagram{
		{"a listener's RTP", lis, rtp(lis, 111, opus...)},
	}
	var unknown = []datagram{
		{"RTP from an undeclared address", stranger, rtp(stranger, 111, opus...)},
		{"RTCP from an undeclared address", stranger, []byte{0x80, 201, 0, 1, 0, 0, 0, 1}},
	}
	var rtcpMalformed = []datagram{
		{"rtcp length past the end", bad, []byte{0x80, 201, 0, 100, 0, 0, 0, 1}},
		{"rtcp report count past the end", bad, []byte{0x83, 201, 0, 1, 0, 0, 0, 1}},
		{"rtcp truncated", bad, []byte{0x80, 200, 0}},
		{"rtcp sender report cut short", bad, []byte{0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0}},
		{"rtcp bad padding", bad, []byte{0xa0, 201, 0, 1, 0, 0, 0, 9}},
	}
	groups := [][]datagram{rtpMalformed, payloadType, badOpus, oversized, notSpeaker, unknown, rtcpMalformed}
	total := 0
	for _, g := range groups {
		total += len(g)
	}
	if total < 20 {
		t.Fatalf("only %d malformed datagrams", total)
	}

	r, _ := ts.s.room("r")
	before := r.Counters()
	gp, _ := r.Participant("good")
	var goodConceal uint64
	udpBefore := ts.s.udp.Stats()
	rtcpBefore := ts.s.sessions.Stats().RTCPMalformed

	// One second of tone to settle, then the garbage in the middle of two
	// more seconds, then measure what the listener heard meanwhile.
	talk(good, 440, 50)
	// The settling second's packets are all in before the count starts.
	poll(func() bool { return gp.Stats().Jitter.PacketsReceived >= 50 })
	mark := lis.mark()
	js0 := gp.Stats().Jitter
	goodConceal = js0.ConcealmentEvents
	done := make(chan struct{})
	go func() {
		defer close(done)
		talk(good, 440, 100)
	}()
	for _, g := range groups {
		for _, d := range g {
			if _, err := d.from.conn.WriteToUDP(d.pkt, server); err != nil {
				t.Fatalf("%s: %v", d.name, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	<-done
	// The speaker has stopped: what its stream concealed until now counts.
	concealed := gp.Stats().Jitter.ConcealmentEvents - goodConceal

	// Every datagram sent reaches the socket (loopback loses none), so
	// each counter reaches its count: wait until all have (the deadline
	// only bounds a failure), then say which did not.
	type count struct {
		what string
		got  func() uint64
		want int
	}
	drop := func(reason engine.DropReason) func() uint64 {
		return func() uint64 { return r.Counters().Dropped[reason] - before.Dropped[reason] }
	}
	counts := []count{
		{"dropped{malformed}", drop(engine.DropMalformed), len(rtpMalformed)},
		{"dropped{payload_type}", drop(engine.DropPayloadType), len(payloadType)},
		{"dropped{bad_opus}", drop(engine.DropBadOpus), len(badOpus)},
		{"dropped{not_speaker}", drop(engine.DropNotSpeaker), len(notSpeaker)},
		{"udp dropped{oversized}", func() uint64 { return ts.s.udp.Stats().Oversized - udpBefore.Oversized }, len(oversized)},
		{"udp dropped{unknown_source}", func() uint64 { return ts.s.udp.Stats().UnknownSource - udpBefore.UnknownSource }, len(unknown)},
		{"rtcp dropped{malformed}", func() uint64 { return ts.s.sessions.Stats().RTCPMalformed - rtcpBefore }, len(rtcpMalformed)},
	}
	poll(func() bool {
		if gp.Stats().Jitter.PacketsReceived < js0.PacketsReceived+100 {
			return false
		}
		for _, c := range counts {
			if c.got() < uint64(c.want) {
				return false
			}
		}
		return true
	})
	for _, c := range counts {
		if got := c.got(); got != uint64(c.want) {
			t.Errorf("%s: counted %d, want %d", c.what, got, c.want)
		}
	}

	db := lis.levelSince(mark, 440)
	t.Logf("the listener heard the good speaker at %.1f dB during the garbage", db)
	if db < -30 {
		t.Errorf("the listener lost the good speaker while garbage arrived: %.1f dB", db)
	}
	// None of the garbage came from the good speaker's address, so it
	// could harm the good stream only by getting into it: every one of the
	// good packets reached its buffer, the buffer never restarted, and no decoder
	// in the room met a bad payload. (Whether the good stream was concealed
	// at all is a matter of timing: its packets are sent in real time, and
	// on a loaded machine one that comes late is concealed while it is
	// awaited, garbage or not.)
	js := gp.Stats().Jitter
	if got := js.PacketsReceived - js0.PacketsReceived; got != 100 {
		t.Errorf("the good speaker's buffer took %d packets, want its 100", got)
	}
	if js.PacketsLost != js0.PacketsLost || js.Resets != js0.Resets {
		t.Errorf("the good stream lost %d packets and restarted %d times during the garbage",
			js.PacketsLost-js0.PacketsLost, js.Resets-js0.Resets)
	}
	if d := r.Counters().DecodeErrors - before.DecodeErrors; d != 0 {
		t.Errorf("%d bad payloads reached a decoder", d)
	}
	t.Logf("the good stream was concealed %d times during the garbage", concealed)
}
