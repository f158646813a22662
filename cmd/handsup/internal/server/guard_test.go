package server

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"
)

// TestJoinRefusesAbusiveAddresses: a join naming an address that would
// turn the server against its users (its own sockets, another
// participant's, unspecified, broadcast, multicast) is refused with a 4xx
// and counted by reason.
func TestJoinRefusesAbusiveAddresses(t *testing.T) {
	ts := startServer(t, "")
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	alice, aliceRecv := newUDPClient(t, nil), newUDPClient(t, nil)
	ts.mustCall("POST", "/v1/rooms/r/participants",
		fmt.Sprintf(`{"id":"alice","role":"speaker","rtp":{"addr":%q,"recv_addr":%q}}`, alice.addr(), aliceRecv.addr()), 201, nil)
	fresh := newUDPClient(t, nil).addr()
	rtcp := ts.s.udp.RTCPAddr().String()
	for _, tc := range []struct {
		name, addr, recv string
		status           int
	}{
		{"the server's RTP address", ts.s.RTPAddr().String(), "", 400},
		{"the server's RTCP address", rtcp, "", 400},
		{"the server's WebRTC address", ts.s.WebRTCAddr().String(), "", 400},
		{"the server's RTP address as recv_addr", fresh, ts.s.RTPAddr().String(), 400},
		{"unspecified", "0.0.0.0:6000", "", 400},
		{"broadcast", "255.255.255.255:6000", "", 400},
		{"multicast", "224.0.0.1:6000", "", 400},
		{"multicast recv_addr", fresh, "239.0.0.1:6000", 400},
		{"another participant's address", alice.addr(), "", 409},
		{"another participant's address as recv_addr", fresh, alice.addr(), 409},
		{"another participant's recv_addr", fresh, aliceRecv.addr(), 409},
	} {
		body := fmt.Sprintf(`{"id":"mallory","role":"listener","rtp":{"addr":%q,"recv_addr":%q}}`, tc.addr, tc.recv)
		if tc.recv == "" {
			body = fmt.Sprintf(`{"id":"mallory","role":"listener","rtp":{"addr":%q}}`, tc.addr)
		}
		var out map[string]string
		if got := ts.call("POST", "/v1/rooms/r/participants", body, &out); got != tc.status {
			t.Errorf("%s: status %d (%q), want %d", tc.name, got, out["error"], tc.status)
		}
	}
	for reason, want := range map[string]int{"own": 4, "unspecified": 1, "broadcast": 1, "multicast": 2, "taken": 3} {
		if got := metric(t, ts, `handsup_udp_addresses_refused_total{reason="`+reason+`"}`); got != strconv.Itoa(want) {
			t.Errorf("refusals for %s: %s, want %d", reason, got, want)
		}
	}
	if got := ts.call("POST", "/v1/rooms/r/participants",
		fmt.Sprintf(`{"id":"mallory","role":"listener","rtp":{"addr":%q}}`, fresh), nil); got != 201 {
		t.Errorf("a good address after the refusals: status %d", got)
	}
}

// TestRecvAddrNeedsConsent: a recv_addr on a host that never answers gets
// at most 5 packets; the room's other listener hears everything.
func TestRecvAddrNeedsConsent(t *testing.T) {
	ts := startServer(t, "")
	ts.mustCall("POST", "/v1/rooms", `{"id":"r","no_dtx":true}`, 201, nil) // 50 packets a second, speech or not
	src := newUDPClient(t, nil)
	victim, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}) // another host, on loopback
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	ts.mustCall("POST", "/v1/rooms/r/participants",
		fmt.Sprintf(`{"id":"mallory","role":"listener","rtp":{"addr":%q,"recv_addr":%q}}`, src.addr(), victim.LocalAddr()), 201, nil)
	const name = `handsup_udp_datagrams_unsent_total{reason="unconfirmed"}`
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if n, _ := strconv.Atoi(metric(t, ts, name)); n >= 25 {
			break
		}
		if time.Now().After(deadline) { // bounds a failure only
			t.Fatalf("%s = %s after 30 s", name, metric(t, ts, name))
		}
	}
	// Everything the server sent is in the socket's queue before this
	// marker, sent after it over the same loopback.
	if _, err := src.conn.WriteToUDP([]byte("end"), victim.LocalAddr().(*net.UDPAddr)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	got := 0
	_ = victim.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		n, err := victim.Read(buf)
		if err != nil {
			t.Fatalf("after %d packets: %v", got, err)
		}
		if string(buf[:n]) == "end" {
			break
		}
		got++
	}
	if got > 5 {
		t.Errorf("a recv_addr that never answered got %d packets, want at most 5", got)
	}
}
