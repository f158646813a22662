// Package testnet holds what handsup's network tests share: loopback ports
// for the external clients (ffmpeg, GStreamer) they start.
package testnet

import (
	"net"
	"testing"
)

// FreeUDPPortPair finds a loopback UDP port whose port + 1 is free too: a
// client's RTP and RTCP ports (ffmpeg's localrtpport and localrtcpport).
// Another process may take them before the client binds; the tests that
// use it start their clients at once.
func FreeUDPPortPair(t testing.TB) int {
	t.Helper()
	for range 32 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		d, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1})
		c.Close()
		if err == nil {
			d.Close()
			return port
		}
	}
	t.Fatal("no free pair of loopback UDP ports")
	return 0
}

// UDPPortFree reports whether the loopback UDP port is free: a client the
// test started has not bound it yet.
func UDPPortFree(port int) bool {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err == nil {
		c.Close()
	}
	return err == nil
}
