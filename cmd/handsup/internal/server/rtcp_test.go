package server

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// rtcpPackets parses what a client received as RTCP.
func (c *udpClient) rtcpPackets(t *testing.T) []rtcp.Packet {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []rtcp.Packet
	for _, d := range c.rtcp {
		pkts, err := rtcp.Unmarshal(d)
		if err != nil {
			t.Errorf("the server sent malformed RTCP: %v (%x)", err, d)
			continue
		}
		out = append(out, pkts...)
	}
	return out
}

// TestRTCP: every output stream gets sender reports; a listener's receiver
// report comes back as loss, jitter and RTT in the API; a speaker gets
// receiver reports on its stream and a NACK for a missing packet.
func TestRTCP(t *testing.T) {
	ts := startServer(t, "")
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	server := net.UDPAddrFromAddrPort(ts.s.RTPAddr())
	spk, lis := newUDPClient(t, server), newUDPClient(t, server)
	var lv map[string]any
	ts.mustCall("POST", "/v1/rooms/r/participants", fmt.Sprintf(`{"id":"s","role":"speaker","rtp":{"addr":%q}}`, spk.addr()), 201, nil)
	ts.mustCall("POST", "/v1/rooms/r/participants", fmt.Sprintf(`{"id":"l","role":"listener","rtp":{"addr":%q}}`, lis.addr()), 201, &lv)
	lisSSRC := uint32(lv["ssrc"].(float64))

	talk(spk, 440, 30)
	spk.seq++ // one packet lost on the way
	talk(spk, 440, 60)

	// The listener got sender reports on its own stream (every 200 ms in
	// these tests; the deadline only bounds a failure).
	var sr *rtcp.SenderReport
	var srAt time.Time
	poll(func() bool {
		lis.mu.Lock()
		defer lis.mu.Unlock()
		for i, d := range lis.rtcp {
			pkts, err := rtcp.Unmarshal(d)
			if err != nil {
				t.Errorf("the server sent malformed RTCP: %v", err)
				continue
			}
			for _, p := range pkts {
				if x, ok := p.(*rtcp.SenderReport); ok && x.SSRC == lisSSRC {
					sr, srAt = x, lis.rtcpAt[i]
				}
			}
		}
		return sr != nil
	})
	if sr == nil {
		t.Fatal("the listener got no sender report on its stream")
	}
	if sr.PacketCount == 0 || sr.OctetCount == 0 {
		t.Errorf("sender report counts nothing: %+v", sr)
	}

	// The listener answers with a receiver report: 25% lost, 4 ms jitter,
	// and the time since the SR, so the round trip is what loopback takes.
	rr := &rtcp.ReceiverReport{SSRC: 0x1157E7, Reports: []rtcp.ReceptionReport{{
		SSRC: lisSSRC, FractionLost: 64, TotalLost: 12, LastSequenceNumber: 100,
		Jitter:           192,
		LastSenderReport: uint32(sr.NTPTime >> 16),
		Delay:            uint32(time.Since(srAt) * 65536 / time.Second), // since the SR came
	}}}
	pkt, err := rr.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lis.conn.WriteToUDP(pkt, server); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Reception *receptionView `json:"reception"`
		Uplink    *uplinkView    `json:"uplink"`
	}
	poll(func() bool {
		ts.mustCall("GET", "/v1/rooms/r/participants/l", "", 200, &got)
		return got.Reception != nil
	})
	if got.Reception == nil {
		t.Fatal("the receiver report did not reach the API")
	}
	if r := got.Reception; r.FractionLost != 0.25 || r.JitterMS != 4 || r.RTTMS < 0 || r.RTTMS > 1000 {
		t.Errorf("reception %+v", r)
	}
	if ts.s.sessions.Stats().RTCPReceived == 0 {
		t.Error("RTCP not counted")
	}
	// The server counts a report just before it moves the tier.
	var tiered struct{ Tier string }
	poll(func() bool {
		ts.mustCall("GET", "/v1/rooms/r/participants/l", "", 200, &tiered)
		return tiered.Tier != "hi"
	})
	if tiered.Tier != "mid" { // low protects with RED, which this listener does not take
		t.Errorf("a listener reporting 25%% loss is on tier %q, want mid", tiered.Tier)
	}

	// A NACK from the listener brings the packet again, unchanged, when
	// the round trip its report measured lets a copy arrive in time (100 ms
	// by default; a loaded machine may measure more); otherwise the server
	// refuses it and counts the refusal.
	lis.mu.Lock()
	nPkts := len(lis.raw)
	lost := append([]byte(nil), lis.raw[nPkts-2]...)
	lis.mu.Unlock()
	lostSeq := uint16(lost[2])<<8 | uint16(lost[3])
	nack := &rtcp.TransportLayerNack{SenderSSRC: 0x1157E7, MediaSSRC: lisSSRC,
		Nacks: []rtcp.NackPair{{PacketID: lostSeq}}}
	if pkt, err = nack.Marshal(); err != nil {
		t.Fatal(err)
	}
	r, _ := ts.s.room("r")
	refusedBefore := r.Counters().NACKsRefused
	if _, err := lis.conn.WriteToUDP(pkt, server); err != nil {
		t.Fatal(err)
	}
	answered := func() bool {
		lis.mu.Lock()
		defer lis.mu.Unlock()
		for _, p := range lis.raw[nPkts:] {
			if string(p) == string(lost) {
				return true
			}
		}
		return false
	}
	refused := func() bool { return r.Counters().NACKsRefused > refusedBefore }
	poll(func() bool { return answered() || refused() })
	rtt := time.Duration(got.Reception.RTTMS * float64(time.Millisecond))
	switch {
	case rtt <= r.Config().NACKMaxRTT && !answered():
		t.Errorf("no retransmission of packet %d after a NACK (RTT %v)", lostSeq, rtt)
	case rtt > r.Config().NACKMaxRTT && !refused():
		t.Errorf("a NACK with RTT %v was not refused", rtt)
	}

	// The speaker's stream: receiver reports (every second) and a NACK for
	// the hole.
	var rrSeen, nacked bool
	poll(func() bool {
		for _, p := range spk.rtcpPackets(t) {
			switch x := p.(type) {
			case *rtcp.ReceiverReport:
				for _, rep := range x.Reports {
					rrSeen = rrSeen || rep.SSRC == 0xABCD
				}
			case *rtcp.TransportLayerNack:
				nacked = nacked || x.MediaSSRC == 0xABCD
			}
		}
		return rrSeen && nacked
	})
	if !rrSeen {
		t.Error("the speaker got no receiver report on its stream")
	}
	if !nacked {
		t.Error("the speaker got no NACK for its lost packet")
	}
	ts.mustCall("GET", "/v1/rooms/r/participants/s", "", 200, &got)
	if got.Uplink == nil || got.Uplink.PacketsReceived < 80 || got.Uplink.PacketsLost != 1 {
		t.Errorf("uplink %+v", got.Uplink)
	}
}
