package testnet_test

import (
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/handsup-audio/handsup/internal/testnet"
)

// TestFreeUDPPortPair: both ports are free, and outside the kernel's
// ephemeral range, where a socket bound to port 0 could take them first.
func TestFreeUDPPortPair(t *testing.T) {
	port := testnet.FreeUDPPortPair(t)
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		var first, last int
		if _, err := fmt.Sscan(string(data), &first, &last); err == nil && first > 12_000 && port+1 >= first {
			t.Errorf("ports %d and %d: within the ephemeral range %d–%d", port, port+1, first, last)
		}
	}
	for _, p := range []int{port, port + 1} {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		c.Close()
	}
}

// UDPPortBound sees a socket bound to the port, on loopback and on the
// unspecified address, and asking does not take the port: a client can
// bind it between two checks.
func TestUDPPortBound(t *testing.T) {
	for _, ip := range []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4zero} {
		port := testnet.FreeUDPPort(t)
		if testnet.UDPPortBound(port) {
			t.Fatalf("port %d: bound before anything bound it", port)
		}
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
		if err != nil {
			t.Fatal(err)
		}
		for range 100 {
			if !testnet.UDPPortBound(port) {
				t.Fatalf("%v:%d: bound, not seen", ip, port)
			}
		}
		c.Close()
		if testnet.UDPPortBound(port) {
			t.Errorf("port %d: seen bound after it was closed", port)
		}
		// The check holds nothing: the port binds at once after it.
		c, err = net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: port})
		if err != nil {
			t.Fatalf("port %d after the check: %v", port, err)
		}
		c.Close()
	}
}

// A pair of ports for an RTP client and its RTCP.
func ExampleFreeUDPPortPair() {
	port := testnet.FreeUDPPortPair(&testing.T{})
	fmt.Println(port > 0 && port < 65535)
	// Output: true
}
