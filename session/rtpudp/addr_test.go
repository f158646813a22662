package rtpudp

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestRefusedAddresses: AddPeer refuses every address that would turn the
// server against its users, each with its error and counter.
func TestRefusedAddresses(t *testing.T) {
	reserved := netip.MustParseAddrPort("127.0.0.1:3478") // a WebRTC socket, say
	tr, err := Listen(Config{Addr: "127.0.0.1:0", Reserved: []netip.AddrPort{reserved}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	b := tr.NewBatch()
	alice, bobRecv := udpSocket(t), udpSocket(t)
	if _, err := tr.AddPeer(addrOf(alice), addrOf(bobRecv), b); err != nil {
		t.Fatal(err)
	}
	fresh := addrOf(udpSocket(t))
	p := netip.MustParseAddrPort
	for _, tc := range []struct {
		name           string
		remote, sendTo netip.AddrPort
		want           error
	}{
		{"unspecified", p("0.0.0.0:6000"), netip.AddrPort{}, ErrBadAddr},
		{"unspecified v6", p("[::]:6000"), netip.AddrPort{}, ErrBadAddr},
		{"port 0", p("127.0.0.1:0"), netip.AddrPort{}, ErrBadAddr},
		{"multicast", p("239.1.2.3:6000"), netip.AddrPort{}, ErrBadAddr},
		{"multicast receive address", fresh, p("[ff02::1]:6000"), ErrBadAddr},
		{"broadcast", p("255.255.255.255:6000"), netip.AddrPort{}, ErrBadAddr},
		{"the RTP socket", tr.LocalAddr(), netip.AddrPort{}, ErrOwnAddr},
		{"the RTP socket, v4-mapped", netip.AddrPortFrom(netip.AddrFrom16(tr.LocalAddr().Addr().As16()), tr.LocalAddr().Port()), netip.AddrPort{}, ErrOwnAddr},
		{"the RTCP socket as receive address", fresh, tr.RTCPAddr(), ErrOwnAddr},
		{"a reserved socket", reserved, netip.AddrPort{}, ErrOwnAddr},
		{"another's source as receive address", fresh, addrOf(alice), ErrAddrTaken},
		{"another's receive address as source", addrOf(bobRecv), netip.AddrPort{}, ErrAddrTaken},
		{"another's receive address", fresh, addrOf(bobRecv), ErrAddrTaken},
	} {
		if _, err := tr.AddPeer(tc.remote, tc.sendTo, b); !errors.Is(err, tc.want) {
			t.Errorf("%s (%v → %v): %v, want %v", tc.name, tc.remote, tc.sendTo, err, tc.want)
		}
	}
	want := Refusals{Unspecified: 3, Multicast: 2, Broadcast: 1, Own: 4, Taken: 3}
	if got := tr.Stats().Refused; got != want {
		t.Errorf("refusals counted %+v, want %+v", got, want)
	}
	if _, err := tr.AddPeer(fresh, netip.AddrPort{}, b); err != nil {
		t.Errorf("a fresh address after the refusals: %v", err)
	}
}

// TestRefusedWildcard: a server listening on 0.0.0.0 refuses its port on
// loopback and on every local interface address.
func TestRefusedWildcard(t *testing.T) {
	tr, err := Listen(Config{Addr: "0.0.0.0:0", NoRTCPPort: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	port := tr.LocalAddr().Port()
	own := []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port),
		netip.AddrPortFrom(netip.MustParseAddr("127.0.0.53"), port)}
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			ip, _ := netip.AddrFromSlice(n.IP.To4())
			own = append(own, netip.AddrPortFrom(ip, port))
		}
	}
	for _, a := range own {
		if _, err := tr.AddPeer(a, netip.AddrPort{}, tr.NewBatch()); !errors.Is(err, ErrOwnAddr) {
			t.Errorf("%v accepted on a server listening on %v: %v", a, tr.LocalAddr(), err)
		}
	}
	other := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port^1)
	if _, err := tr.AddPeer(other, netip.AddrPort{}, tr.NewBatch()); err != nil {
		t.Errorf("another port on loopback: %v", err)
	}
}

// TestReceiveAddressConsent: a receive address on another host than the
// participant's source gets a few packets, then nothing until it sends a
// datagram; after that, the whole stream.
func TestReceiveAddressConsent(t *testing.T) {
	tr := listen(t)
	serve(t, tr)
	src := udpSocket(t)
	victim, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}) // another host, on loopback
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { victim.Close() })
	b := tr.NewBatch()
	peer, err := tr.AddPeer(addrOf(src), addrOf(victim), b)
	if err != nil {
		t.Fatal(err)
	}
	peer.Bind(newRecorder())
	send := func(n int) {
		for i := range n {
			if err := peer.WriteRTP([]byte{0x80, 111, 0, byte(i), 0, 0, 0, 0, 0, 0, 0, 1}, []byte{1}); err != nil {
				t.Fatal(err)
			}
			b.Flush()
		}
	}
	// count reads what arrives until a marker datagram sent after it,
	// through the same loopback path, shows the rest is in.
	count := func() int {
		t.Helper()
		marker := udpSocket(t)
		if _, err := marker.WriteToUDP([]byte("end"), net.UDPAddrFromAddrPort(addrOf(victim))); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		n := 0
		_ = victim.SetReadDeadline(time.Now().Add(20 * time.Second)) // bounds a failure only
		for {
			k, err := victim.Read(buf)
			if err != nil {
				t.Fatalf("after %d packets: %v", n, err)
			}
			if string(buf[:k]) == "end" {
				return n
			}
			n++
		}
	}
	send(50)
	_ = peer.WriteRTCP([]byte{0x80, 200, 0, 1, 0, 0, 0, 1})
	if got := count(); got != 5 {
		t.Errorf("a receive address that never answered got %d packets, want 5", got)
	}
	if s := tr.Stats(); s.Unconfirmed != 46 || s.Confirmed != 0 {
		t.Errorf("unconfirmed %d, confirmed %d; want 46 and 0", s.Unconfirmed, s.Confirmed)
	}

	// The receiver answers (an RTCP receiver report from its socket).
	if _, err := victim.WriteToUDP([]byte{0x80, 201, 0, 1, 0, 0, 0, 9}, net.UDPAddrFromAddrPort(tr.LocalAddr())); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); tr.Stats().Confirmed == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the receive address's datagram did not confirm it")
		}
	}
	send(50)
	if got := count(); got != 50 {
		t.Errorf("a confirmed receive address got %d of 50 packets", got)
	}
}

// A receive address on the source's host needs no confirmation (ffmpeg
// sends from one port and receives on another).
func TestReceiveAddressSameHost(t *testing.T) {
	tr := listen(t)
	src, recv := udpSocket(t), udpSocket(t)
	b := tr.NewBatch()
	peer, err := tr.AddPeer(addrOf(src), addrOf(recv), b)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		_ = peer.WriteRTP([]byte{0x80, 111, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, []byte{1})
		b.Flush()
	}
	if s := tr.Stats(); s.Unconfirmed != 0 || s.PacketsOut != 20 {
		t.Errorf("same host: %d unconfirmed, %d sent; want 0 and 20", s.Unconfirmed, s.PacketsOut)
	}
}
