package testnet_test

import (
	"fmt"
	"net"
	"testing"

	"github.com/handsup-audio/handsup/internal/testnet"
)

func TestFreeUDPPortPair(t *testing.T) {
	port := testnet.FreeUDPPortPair(t)
	for _, p := range []int{port, port + 1} {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
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
