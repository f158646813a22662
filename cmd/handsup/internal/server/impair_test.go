package server

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/handsup-audio/handsup/bench/impair"
	"github.com/handsup-audio/handsup/engine"
)

// TestImpairedNetworksThroughTheRelay runs the server behind the impairment
// relay: a speaker's uplink and a listener's downlink go through each
// profile, the listener sends receiver reports as a real client would, and
// what it decodes must keep the speaker's tone; a clean listener beside it
// must not suffer.
func TestImpairedNetworksThroughTheRelay(t *testing.T) {
	for _, name := range []string{"lte-good", "wifi-congested", "3g-poor", "edge-bursty", "loss-10", "jitter-30"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			profile, ok := impair.Profile(name)
			if !ok {
				t.Fatalf("no profile %q", name)
			}
			runImpaired(t, name, profile)
		})
	}
}

func runImpaired(t *testing.T, name string, profile impair.Config) {
	ts := startServer(t, "")
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	server := ts.s.RTPAddr()
	relay, err := impair.NewRelay(server, profile, profile)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	viaRelay := net.UDPAddrFromAddrPort(relay.LocalAddr())

	spk := newUDPClient(t, viaRelay)
	lis := newBufferedClient(t, viaRelay)
	clean := newUDPClient(t, net.UDPAddrFromAddrPort(server))
	join := func(id, role string, c *udpClient, through bool) uint32 {
		addr := c.addr()
		if through {
			up, err := relay.Bind(netip.MustParseAddrPort(addr))
			if err != nil {
				t.Fatal(err)
			}
			addr = up.String() // the server sees the client at the relay's side
		}
		var v struct{ SSRC uint32 }
		ts.mustCall("POST", "/v1/rooms/r/participants",
			fmt.Sprintf(`{"id":%q,"role":%q,"rtp":{"addr":%q}}`, id, role, addr), 201, &v)
		return v.SSRC
	}
	join("s", "speaker", spk, true)
	lisSSRC := join("l", "listener", lis, true)
	join("c", "listener", clean, false)

	// The listener reports what it receives once a second. Its reports
	// cross the impaired uplink too: the relay decides each one's fate as
	// it reads it, so the reporter notes which reached the server's side.
	lisAddr := netip.MustParseAddrPort(lis.addr())
	stop := make(chan struct{})
	reported := make(chan struct{})
	// Written by the reporter, read after it ends: the highest loss any
	// report carried, and any report that was not lost on the way.
	var maxReported, maxDelivered float64
	var sentReports int
	go func() {
		defer close(reported)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var lastExpected, lastReceived int
		var dropped uint64 // reports the uplink lost so far
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			expected, received := lis.sequenceCounts()
			e, r := expected-lastExpected, received-lastReceived
			lastExpected, lastReceived = expected, received
			var frac uint8
			if e > 0 && r < e {
				frac = uint8(min(255, 256*(e-r)/e))
			}
			rr := &rtcp.ReceiverReport{SSRC: 0xBEEF, Reports: []rtcp.ReceptionReport{{
				SSRC: lisSSRC, FractionLost: frac, LastSequenceNumber: uint32(expected)}}}
			pkt, _ := rr.Marshal()
			_, _ = lis.conn.WriteToUDP(pkt, viaRelay)
			sentReports++
			var up impair.LinkStats
			if !poll(func() bool {
				up, _, _ = relay.ClientStats(lisAddr)
				return up.Sent == uint64(sentReports)
			}) {
				t.Errorf("the relay never read report %d", sentReports)
				return
			}
			maxReported = max(maxReported, float64(frac)/256)
			if lost := up.Lost + up.QueueDrops; lost == dropped {
				maxDelivered = max(maxDelivered, float64(frac)/256)
			} else {
				dropped = lost
			}
		}
	}()

	talk(spk, 440, 50)
	ml, mc := lis.mark(), clean.mark()
	talk(spk, 440, 200)
	close(stop)
	<-reported
	// The last reports are still crossing the impaired uplink: wait until
	// nothing is in flight and the server has counted every one delivered.
	var lisUp impair.LinkStats
	var counted uint64
	if !poll(func() bool {
		lisUp, _, _ = relay.ClientStats(lisAddr)
		counted = receptionReports(ts, "r", "l")
		return lisUp.Delivered-lisUp.Duplicated+lisUp.Lost+lisUp.QueueDrops == lisUp.Sent &&
			counted == lisUp.Delivered
	}) {
		t.Fatalf("the listener's reports did not settle: relay %+v, server counted %d", lisUp, counted)
	}

	got, ref := lis.levelSince(ml, 440), clean.levelSince(mc, 440)
	r, _ := ts.s.room("r")
	sp, _ := r.Participant("s")
	lp, _ := r.Participant("l")
	js := sp.Stats().Jitter
	up, down := relay.Stats()
	if got < -30 {
		t.Errorf("the impaired listener lost the speaker: %.1f dB", got)
	}
	if ref < -20 {
		t.Errorf("the clean listener lost the speaker: %.1f dB", ref)
	}
	// The tier follows the reports the server got: any of mid's loss or
	// more moves the listener off the top tier (and the test is shorter
	// than a relax); with none, nothing moves it. The server counts a
	// report just before it acts on it, so the move is waited for.
	mid := engine.DefaultTiers()[1].MinLoss
	if maxDelivered >= mid && !poll(func() bool { return lp.Tier() != 0 }) {
		t.Errorf("the listener reported %.0f%% loss and stayed on the top tier", 100*maxDelivered)
	}
	if maxDelivered < mid && lp.Tier() != 0 {
		t.Errorf("the server got reports of at most %.1f%% loss and the listener left the top tier", 100*maxDelivered)
	}
	t.Logf("%s: uplink lost %d of %d, downlink lost %d of %d; server: %d lost, %d FEC, %d concealed samples, target %v; listener reported up to %.0f%% loss (%.0f%% in the %d reports the server got of %d), tier %d, tone %.1f dB (clean listener %.1f dB)",
		name, up.Lost, up.Sent, down.Lost, down.Sent, js.PacketsLost, js.FecPacketsReceived, js.ConcealedSamples, js.TargetDelay, 100*maxReported, 100*maxDelivered, counted, sentReports, lp.Tier(), got, ref)
}

// poll reports whether cond came true, checking it every 5 ms. It gives up
// after 20 s, far beyond anything the relay and server take even on a
// loaded machine: a hang guard, not a timing assertion.
func poll(cond func() bool) bool {
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// receptionReports is how many RTCP datagrams the server has counted from
// a participant, as its API shows them.
func receptionReports(ts *testServer, room, id string) uint64 {
	var v struct{ Reception *struct{ Reports uint64 } }
	ts.mustCall("GET", "/v1/rooms/"+room+"/participants/"+id, "", 200, &v)
	if v.Reception == nil {
		return 0
	}
	return v.Reception.Reports
}

// sequenceCounts is how many RTP packets the client expected (from the
// first to the highest sequence number) and received.
func (c *udpClient) sequenceCounts() (expected, received int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.raw) == 0 {
		return 0, 0
	}
	first := int(binary.BigEndian.Uint16(c.raw[0][2:]))
	high := first
	for _, p := range c.raw {
		s := int(binary.BigEndian.Uint16(p[2:]))
		d := int(int16(uint16(s - high)))
		if d > 0 {
			high += d
		}
	}
	seen := map[int]bool{}
	for _, p := range c.raw {
		seen[int(binary.BigEndian.Uint16(p[2:]))] = true
	}
	return high - first + 1, len(seen)
}
