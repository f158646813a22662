// Package testnet holds what handsup's network tests share: loopback ports
// for the external clients (ffmpeg, GStreamer) they start.
package testnet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
)

// FreeUDPPortPair finds a loopback UDP port whose port + 1 is free too: a
// client's RTP and RTCP ports (ffmpeg's localrtpport and localrtcpport).
// It draws them below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), where no other socket bound to port 0 by
// a test running beside this one can land between the check and the
// client's own bind (one did: ffmpeg failed with "Address already in
// use"), and never hands out a port twice in a process. Where that range
// leaves no room below it, the port comes from the kernel as before.
func FreeUDPPortPair(t testing.TB) int {
	t.Helper()
	return free(t, 2)
}

// FreeUDPPort finds a free loopback UDP port for a client to bind, as
// FreeUDPPortPair does.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	return free(t, 1)
}

// free finds a loopback UDP port whose next n-1 ports are free too.
func free(t testing.TB, n int) int {
	t.Helper()
	allFree := func(port int) bool {
		for p := port; p < port+n; p++ {
			if !UDPPortFree(p) {
				return false
			}
		}
		return true
	}
	if lo, hi, ok := belowEphemeral(); ok {
		mu.Lock()
		defer mu.Unlock()
		for range 64 {
			port := lo + 2*rand.IntN((hi-lo)/2)
			if !given[port] && allFree(port) {
				given[port] = true // not again in this process: its client may not have bound it yet
				return port
			}
		}
	}
	for range 32 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		if allFree(port) {
			return port
		}
	}
	t.Fatal("no free loopback UDP port")
	return 0
}

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// belowEphemeral is the range of ports, [lo, hi), that FreeUDPPortPair
// draws from: up to 10,000 ports under the kernel's ephemeral range, above
// the privileged ports.
func belowEphemeral() (lo, hi int, ok bool) {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0, false
	}
	var first, last int
	if _, err := fmt.Sscan(string(data), &first, &last); err != nil {
		return 0, 0, false
	}
	hi = first - 1 // port + 1 stays below the range too
	lo = max(1024, hi-10_000)
	return lo, hi, hi-lo >= 1_000
}

// UDPPortBound reports whether a socket is bound to the UDP port, on
// loopback or any address, without binding it: a test waiting for a
// client it started to bind the port must not take the port itself, even
// for a moment (a probe that bound it every 10 ms made ffmpeg fail with
// "Address already in use" under load). It reads /proc/net/udp and
// /proc/net/udp6; where they cannot be read it falls back to a brief
// bind (UDPPortFree).
func UDPPortBound(port int) bool {
	found, ok := false, false
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		ok = true
		if boundIn(string(data), port) {
			found = true
		}
	}
	if !ok {
		return !UDPPortFree(port)
	}
	return found
}

// boundIn reports whether a /proc/net/udp table lists a socket whose
// local port is port.
func boundIn(table string, port int) bool {
	suffix := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(table, "\n")[1:] {
		fields := strings.Fields(line)
		if len(fields) > 1 && strings.HasSuffix(fields[1], suffix) {
			return true
		}
	}
	return false
}

// UDPPortFree reports whether the loopback UDP port is free, by binding
// it for a moment: for choosing a port before a client starts, not for
// waiting on one (UDPPortBound).
func UDPPortFree(port int) bool {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err == nil {
		c.Close()
	}
	return err == nil
}
