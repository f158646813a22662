package rtpudp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
)

// Errors of AddPeer's address checks, beside ErrAddrTaken.
var (
	// ErrBadAddr: not a unicast address a client can have (unspecified,
	// port 0, multicast, broadcast).
	ErrBadAddr = errors.New("rtpudp: not a client's unicast address")
	// ErrOwnAddr: one of the server's own sockets (the RTP and RTCP ports,
	// Config.Reserved), which would loop the room's output back into it.
	ErrOwnAddr = errors.New("rtpudp: the address is one of the server's own")
)

// refusal is why an address was refused; each has a counter.
type refusal int

const (
	refusedUnspecified refusal = iota // 0.0.0.0, ::, or port 0
	refusedMulticast
	refusedBroadcast
	refusedOwn   // the server's own socket
	refusedTaken // another participant's address
	numRefusals
)

var refusalNames = [numRefusals]string{"unspecified", "multicast", "broadcast", "own", "taken"}

func (r refusal) String() string { return refusalNames[r] }

// checkAddr refuses an address no client can rightly have. It reads the
// host's interfaces only when a socket of the server is bound to a
// wildcard address on the same port.
func (t *Transport) checkAddr(a netip.AddrPort) (refusal, error) {
	ip := a.Addr().Unmap()
	switch {
	case !a.IsValid() || ip.IsUnspecified() || a.Port() == 0:
		return refusedUnspecified, fmt.Errorf("%w: %s is unspecified", ErrBadAddr, a)
	case ip.IsMulticast():
		return refusedMulticast, fmt.Errorf("%w: %s is multicast", ErrBadAddr, a)
	case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return refusedBroadcast, fmt.Errorf("%w: %s is broadcast", ErrBadAddr, a)
	}
	var ifaces []net.Addr
	for _, own := range t.own {
		if own.Port() != a.Port() {
			continue
		}
		if own.Addr().Unmap() == ip {
			return refusedOwn, fmt.Errorf("%w: %s", ErrOwnAddr, a)
		}
		if !own.Addr().IsUnspecified() {
			continue
		}
		if ip.IsLoopback() {
			return refusedOwn, fmt.Errorf("%w: %s (the server listens on %s)", ErrOwnAddr, a, own)
		}
		if ifaces == nil {
			ifaces, _ = net.InterfaceAddrs()
		}
		for _, ia := range ifaces {
			if n, ok := ia.(*net.IPNet); ok && n.IP.Equal(net.IP(ip.AsSlice())) {
				return refusedOwn, fmt.Errorf("%w: %s (the server listens on %s)", ErrOwnAddr, a, own)
			}
		}
	}
	if ip.Is4() && directedBroadcast(ip) {
		return refusedBroadcast, fmt.Errorf("%w: %s is the broadcast address of a local network", ErrBadAddr, a)
	}
	return 0, nil
}

// directedBroadcast reports whether ip is the broadcast address of one of
// the host's IPv4 networks.
func directedBroadcast(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		n, ok := ia.(*net.IPNet)
		if !ok || n.IP.To4() == nil {
			continue
		}
		ones, bits := n.Mask.Size()
		if bits != 32 || ones >= 31 { // point-to-point links have no broadcast
			continue
		}
		b := n.IP.To4().Mask(n.Mask)
		for i := range b {
			b[i] |= ^n.Mask[i]
		}
		if bc, ok := netip.AddrFromSlice(b); ok && bc == ip {
			return true
		}
	}
	return false
}

// refuse counts and logs a refused address.
func (t *Transport) refuse(r refusal, err error) error {
	t.stats.refused[r].Add(1)
	t.cfg.Logger.Warn("participant address refused", "reason", r.String(), "err", err)
	return err
}
