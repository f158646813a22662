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

	// The listener reports what it receives once a second.
	stop := make(chan struct{})
	reported := make(chan struct{})
	var maxReported float64 // written by the reporter, read after it ends
	go func() {
		defer close(reported)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		var lastExpected, lastReceived int
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
			maxReported = max(maxReported, float64(frac)/256)
			rr := &rtcp.ReceiverReport{SSRC: 0xBEEF, Reports: []rtcp.ReceptionReport{{
				SSRC: lisSSRC, FractionLost: frac, LastSequenceNumber: uint32(expected)}}}
			pkt, _ := rr.Marshal()
			_, _ = lis.conn.WriteToUDP(pkt, viaRelay)
		}
	}()

	talk(spk, 440, 50)
	ml, mc := lis.mark(), clean.mark()
	talk(spk, 440, 200)
	close(stop)
	<-reported
	// The last report is still crossing the impaired uplink.
	time.Sleep(profile.Delay + 4*profile.Jitter + 200*time.Millisecond)

	got, ref := lis.levelSince(ml, 440), clean.levelSince(mc, 440)
	r, _ := ts.s.room("r")
	sp, _ := r.Participant("s")
	lp, _ := r.Participant("l")
	js := sp.Stats().Jitter
	up, down := relay.Stats()
	t.Logf("%s: uplink lost %d of %d, downlink lost %d of %d; server: %d lost, %d FEC, %d concealed samples, target %v; listener reported up to %.0f%% loss, tier %d, tone %.1f dB (clean listener %.1f dB)",
		name, up.Lost, up.Sent, down.Lost, down.Sent, js.PacketsLost, js.FecPacketsReceived, js.ConcealedSamples, js.TargetDelay, 100*maxReported, lp.Tier(), got, ref)
	if got < -30 {
		t.Errorf("the impaired listener lost the speaker: %.1f dB", got)
	}
	if ref < -20 {
		t.Errorf("the clean listener lost the speaker: %.1f dB", ref)
	}
	// The tier follows the reports: any report of mid's loss or more moves
	// the listener off the top tier (and the test is shorter than a relax).
	mid := engine.DefaultTiers()[1].MinLoss
	if maxReported >= mid && lp.Tier() == 0 {
		t.Errorf("the listener reported %.0f%% loss and stayed on the top tier", 100*maxReported)
	}
	if maxReported < mid && lp.Tier() != 0 {
		t.Errorf("the listener reported at most %.1f%% loss and left the top tier", 100*maxReported)
	}
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
