package rtpudp

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestCollector: the handsup_udp_* families say what the socket saw.
func TestCollector(t *testing.T) {
	tr := listen(t)
	serve(t, tr)

	dial := func() *net.UDPConn {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(tr.LocalAddr()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	stranger, declared := dial(), dial()
	if _, err := tr.AddPeer(declared.LocalAddr().(*net.UDPAddr).AddrPort(), netip.AddrPort{}, tr.NewBatch()); err != nil {
		t.Fatal(err)
	}
	rtpPkt := []byte{0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xF8}
	rtcpPkt := []byte{0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	for _, m := range []struct {
		c   *net.UDPConn
		pkt []byte
	}{
		{stranger, rtpPkt}, {stranger, rtpPkt}, {stranger, make([]byte, 1600)},
		{declared, rtpPkt}, {declared, rtcpPkt},
	} {
		if _, err := m.c.Write(m.pkt); err != nil {
			t.Fatal(err)
		}
	}
	want := Stats{RTPIn: 1, RTCPIn: 1, UnknownSource: 2, Unbound: 2, Oversized: 1, DeclaredPeers: 1}
	// Loopback does not lose datagrams; the deadline only bounds a failure.
	for deadline := time.Now().Add(10 * time.Second); tr.Stats() != want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("transport stats %+v, want %+v", tr.Stats(), want)
		}
	}

	c := NewCollector(tr)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	expected := `
# HELP handsup_udp_datagrams_dropped_total UDP datagrams dropped before the engine: unknown_source (from an address no participant declared or learned, without a join SSRC: stale clients, spoofing, scans), unbound (RTP or RTCP from a declared address whose participant is not bound yet), oversized (over 1500 bytes), not_rtcp (other than RTCP on the RTCP port), move_limited (a join SSRC from a new address less than the move interval after the last move).
# TYPE handsup_udp_datagrams_dropped_total counter
handsup_udp_datagrams_dropped_total{reason="move_limited"} 0
handsup_udp_datagrams_dropped_total{reason="not_rtcp"} 0
handsup_udp_datagrams_dropped_total{reason="oversized"} 1
handsup_udp_datagrams_dropped_total{reason="unbound"} 2
handsup_udp_datagrams_dropped_total{reason="unknown_source"} 2
# HELP handsup_udp_datagrams_received_total UDP datagrams received from declared participant addresses, by kind (rtp or rtcp, told apart as in RFC 5761; rtcp counts both the RTP port and the RTCP port, the RTP port + 1).
# TYPE handsup_udp_datagrams_received_total counter
handsup_udp_datagrams_received_total{kind="rtcp"} 1
handsup_udp_datagrams_received_total{kind="rtp"} 1
# HELP handsup_udp_datagrams_sent_total UDP datagrams sent to participants.
# TYPE handsup_udp_datagrams_sent_total counter
handsup_udp_datagrams_sent_total 0
# HELP handsup_udp_declared_peers Participant addresses declared on the UDP transport.
# TYPE handsup_udp_declared_peers gauge
handsup_udp_declared_peers 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expected),
		"handsup_udp_datagrams_dropped_total", "handsup_udp_datagrams_received_total",
		"handsup_udp_datagrams_sent_total", "handsup_udp_declared_peers"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 23 {
		t.Errorf("%d series (%v), want 23", n, err)
	}
	if probs, err := testutil.CollectAndLint(c); err != nil || len(probs) > 0 {
		t.Errorf("lint: %v %v", probs, err)
	}
}
