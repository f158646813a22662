package rtpudp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/internal/fakeclock"
)

func listen(t testing.TB) *Transport {
	t.Helper()
	tr, err := Listen(Config{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func udpSocket(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// serve runs tr.Serve until the test ends.
func serve(t testing.TB, tr *Transport) {
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- tr.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-served })
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// TestBatchSendsEveryPacket: packets queued in a batch arrive, each with
// its own header around the shared payload, in one sendmmsg per batch.
func TestBatchSendsEveryPacket(t *testing.T) {
	tr := listen(t)
	rx := udpSocket(t)
	b := tr.NewBatch()
	p, err := tr.AddPeer(addrOf(rx), netip.AddrPort{}, b)
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("shared payload")
	for i := range 10 {
		h := []byte{0x80, 111, 0, byte(i), 0, 0, 0, 0, 0, 0, 0, 1}
		if err := p.WriteRTP(h, payload); err != nil {
			t.Fatal(err)
		}
	}
	b.Flush()
	buf := make([]byte, 100)
	_ = rx.SetReadDeadline(time.Now().Add(20 * time.Second)) // bounds a failure only
	for i := range 10 {
		n, err := rx.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n != 12+len(payload) || buf[3] != byte(i) || string(buf[12:n]) != string(payload) {
			t.Fatalf("packet %d: %x", i, buf[:n])
		}
	}
	if s := tr.Stats(); s.PacketsOut != 10 || s.SendSyscalls != 1 {
		t.Errorf("stats %+v: want 10 packets in 1 syscall", s)
	}
}

// recorder is a session.Receiver that hands on what it gets.
type recorder struct{ rtp, rtcp chan []byte }

func newRecorder() *recorder {
	return &recorder{rtp: make(chan []byte, 16), rtcp: make(chan []byte, 16)}
}

func (r *recorder) ReceiveRTP(pkt []byte)  { r.rtp <- append([]byte(nil), pkt...) }
func (r *recorder) ReceiveRTCP(pkt []byte) { r.rtcp <- append([]byte(nil), pkt...) }

// TestDemux: datagrams reach the receiver bound to their source address,
// RTP and RTCP told apart; strangers, declared addresses with no receiver
// and oversized datagrams are dropped and counted.
func TestDemux(t *testing.T) {
	tr := listen(t)
	serve(t, tr)

	speaker, stranger, unbound := udpSocket(t), udpSocket(t), udpSocket(t)
	b := tr.NewBatch()
	peer, err := tr.AddPeer(addrOf(speaker), netip.AddrPort{}, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.AddPeer(addrOf(speaker), netip.AddrPort{}, b); !errors.Is(err, ErrAddrTaken) {
		t.Errorf("an address was declared twice: %v", err)
	}
	if _, err := tr.AddPeer(addrOf(unbound), netip.AddrPort{}, b); err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	peer.Bind(rec)

	server := net.UDPAddrFromAddrPort(tr.LocalAddr())
	rtp := []byte{0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0xfc, 1, 2}
	rtcp := []byte{0x80, 201, 0, 1, 0, 0, 0, 9}
	send := func(c *net.UDPConn, pkt []byte) {
		if _, err := c.WriteToUDP(pkt, server); err != nil {
			t.Fatal(err)
		}
	}
	send(speaker, rtp)
	send(speaker, rtcp)
	send(stranger, rtp)
	send(unbound, rtp)
	send(speaker, make([]byte, 1600))
	for _, ch := range []chan []byte{rec.rtp, rec.rtcp} {
		select {
		case got := <-ch:
			if want := map[bool][]byte{true: rtp, false: rtcp}[ch == rec.rtp]; string(got) != string(want) {
				t.Errorf("received %x, want %x", got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the bound receiver got nothing")
		}
	}
	// Loopback does not lose datagrams; the deadline only bounds a failure.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s := tr.Stats()
		if s.RTPIn+s.RTCPIn+s.UnknownSource+s.Oversized >= 5 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	s := tr.Stats()
	if s.RTPIn != 2 || s.RTCPIn != 1 || s.UnknownSource != 1 || s.Unbound != 1 || s.Oversized != 1 {
		t.Errorf("stats %+v", s)
	}

	// Closing the peer unbinds it and frees its address.
	if err := peer.Close(); err != nil {
		t.Fatal(err)
	}
	if tr.Peers() != 1 {
		t.Errorf("%d peers declared after Close, want 1", tr.Peers())
	}
	if _, err := tr.AddPeer(addrOf(speaker), netip.AddrPort{}, b); err != nil {
		t.Errorf("address not freed by Close: %v", err)
	}
}

func TestIsRTCP(t *testing.T) {
	for _, tc := range []struct {
		pkt  []byte
		want bool
	}{
		{[]byte{0x80, 200}, true},  // SR
		{[]byte{0x80, 201}, true},  // RR
		{[]byte{0x81, 205}, true},  // NACK
		{[]byte{0x80, 111}, false}, // Opus
		{[]byte{0x80, 0xef}, false},
		{[]byte{0x40, 200}, false}, // version 1
		{[]byte{0x80}, false},
	} {
		if got := IsRTCP(tc.pkt); got != tc.want {
			t.Errorf("IsRTCP(%x) = %v", tc.pkt, got)
		}
	}
}

// wildcardPorts opens n receiving sockets on the unspecified address, so
// that each takes datagrams to any loopback address on its port, and
// returns their ports. Nobody reads them: once full, the kernel drops what
// arrives.
func wildcardPorts(t testing.TB, n int) []uint16 {
	t.Helper()
	var ports []uint16
	for range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		ports = append(ports, uint16(c.LocalAddr().(*net.UDPAddr).Port))
	}
	return ports
}

// manyAddrs is listener i's source (127.0.x.y:9) and receive address (the
// same host, on one of ports): distinct for each i up to 65,535.
func manyAddrs(i int, ports []uint16) (remote, to netip.AddrPort) {
	host := netip.AddrFrom4([4]byte{127, 0, byte(i >> 8), byte(i)})
	return netip.AddrPortFrom(host, 9), netip.AddrPortFrom(host, ports[i%len(ports)])
}

// BenchmarkSend is one tick's send for 10,000 listeners sharing a payload:
// batched sendmmsg through a Batch against one WriteToUDP per packet. Each
// iteration does both, alternately, so both meet the same socket and
// receiver state (receivers are a few sockets nobody reads: once full, the
// kernel drops what arrives, for both alike).
func BenchmarkSend(b *testing.B) {
	const listeners = 10000
	tr := listen(b)
	ports := wildcardPorts(b, 16)
	header := []byte{0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}
	payload := make([]byte, 80) // a 32 kbps Opus frame

	batch := tr.NewBatch()
	peers := make([]*Peer, listeners)
	addrs := make([]*net.UDPAddr, listeners)
	for i := range peers {
		// Distinct declared addresses, each receiving on one of the shared
		// receivers' ports.
		remote, to := manyAddrs(i, ports)
		p, err := tr.AddPeer(remote, to, batch)
		if err != nil {
			b.Fatal(err)
		}
		peers[i], addrs[i] = p, net.UDPAddrFromAddrPort(to)
	}
	buf := make([]byte, 0, 1500)
	var batched, single time.Duration
	before := tr.Stats()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		for _, p := range peers {
			_ = p.WriteRTP(header, payload)
		}
		batch.Flush()
		t1 := time.Now()
		for _, a := range addrs {
			buf = append(append(buf[:0], header...), payload...)
			_ = tr.WriteTo(buf, a.AddrPort())
		}
		single += time.Since(t1)
		batched += t1.Sub(t0)
	}
	b.StopTimer()
	after := tr.Stats()
	packets := float64(b.N * listeners)
	b.ReportMetric(float64(batched.Nanoseconds())/packets, "sendmmsg-ns/packet")
	b.ReportMetric(float64(single.Nanoseconds())/packets, "WriteToUDP-ns/packet")
	b.ReportMetric(float64(after.PacketsOut-before.PacketsOut)/float64(after.SendSyscalls-before.SendSyscalls), "packets/syscall")
	b.ReportMetric(float64(single)/float64(batched), "speedup")
}

// udpPair opens two loopback sockets on a port and the port above it, as
// an RFC 3550 client binds its RTP and RTCP ports.
func udpPair(t testing.TB) (rtp, rtcp *net.UDPConn) {
	t.Helper()
	for range 32 {
		a := udpSocket(t)
		b, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(addrOf(a).Port()) + 1})
		if err == nil {
			t.Cleanup(func() { b.Close() })
			return a, b
		}
	}
	t.Fatal("no free pair of loopback ports")
	return nil, nil
}

// TestRTCPPort: RTCP sent to the RTP port + 1 reaches the peer's receiver
// when it comes from a declared address or the port above one (an ffmpeg
// sender's localrtcpport, an ffmpeg listener's RTCP port); RTP there, and
// RTCP from strangers, are dropped and counted.
func TestRTCPPort(t *testing.T) {
	tr := listen(t)
	if got, want := tr.RTCPAddr().Port(), tr.LocalAddr().Port()+1; got != want {
		t.Fatalf("RTCP port %d, want %d", got, want)
	}
	serve(t, tr)

	send, sendRTCP := udpPair(t)
	recv, recvRTCP := udpPair(t)
	stranger := udpSocket(t)
	peer, err := tr.AddPeer(addrOf(send), addrOf(recv), tr.NewBatch())
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	peer.Bind(rec)

	to := net.UDPAddrFromAddrPort(tr.RTCPAddr())
	sr := []byte{0x80, 200, 0, 6, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	rr := []byte{0x80, 201, 0, 1, 0, 0, 0, 9}
	rtp := []byte{0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0xfc}
	for _, m := range []struct {
		c   *net.UDPConn
		pkt []byte
	}{
		{sendRTCP, sr}, {recvRTCP, rr}, {send, rr}, {recv, rr}, // accepted
		{sendRTCP, rtp}, {stranger, rr}, // dropped
	} {
		if _, err := m.c.WriteToUDP(m.pkt, to); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		select {
		case <-rec.rtcp:
		case <-time.After(20 * time.Second): // bounds a failure only
			t.Fatalf("%d of 4 RTCP packets reached the receiver", i)
		}
	}
	want := Stats{RTCPIn: 4, RTCPPortIn: 4, NotRTCP: 1, UnknownSource: 1, DeclaredPeers: 1}
	for deadline := time.Now().Add(20 * time.Second); tr.Stats() != want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want %+v", tr.Stats(), want)
		}
	}
	if len(rec.rtp) != 0 {
		t.Error("RTP on the RTCP port reached the receiver")
	}

	// Closing the peer frees its RTCP sources too.
	_ = peer.Close()
	if _, err := stranger.WriteToUDP(rr, to); err != nil {
		t.Fatal(err)
	}
	if _, err := sendRTCP.WriteToUDP(rr, to); err != nil {
		t.Fatal(err)
	}
	want.UnknownSource, want.DeclaredPeers = 3, 0
	for deadline := time.Now().Add(20 * time.Second); tr.Stats() != want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want %+v", tr.Stats(), want)
		}
	}
}

// TestNoRTCPPort: Config.NoRTCPPort opens one socket only.
func TestNoRTCPPort(t *testing.T) {
	tr, err := Listen(Config{Addr: "127.0.0.1:0", NoRTCPPort: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.RTCPAddr().IsValid() {
		t.Errorf("RTCP socket %v opened", tr.RTCPAddr())
	}
	// A fixed port whose port + 1 is taken is refused, with the way out.
	a, _ := udpPair(t)
	busy := netip.AddrPortFrom(addrOf(a).Addr(), addrOf(a).Port()+1)
	_ = a.Close()
	if _, err := Listen(Config{Addr: netip.AddrPortFrom(busy.Addr(), busy.Port()-1).String()}); err == nil {
		t.Error("listened although the RTCP port is taken")
	}
}

// TestLatching: a peer declared by SSRC alone latches onto the first
// source that presents it, sends its stream there, follows the SSRC to a
// new source at most once per MoveInterval, and never takes packets from a
// source that does not present it.
func TestLatching(t *testing.T) {
	clk := fakeclock.New(time.Unix(1_700_000_000, 0))
	tr, err := Listen(Config{Addr: "127.0.0.1:0", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	serve(t, tr)

	const secret = 0x5ec4e7
	b := tr.NewBatch()
	peer, err := tr.AddLatchingPeer(secret, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.AddLatchingPeer(secret, b); !errors.Is(err, ErrSSRCTaken) {
		t.Errorf("an SSRC latched twice: %v", err)
	}
	rec := newRecorder()
	peer.Bind(rec)
	// Before it latches, its stream goes nowhere.
	if err := peer.WriteRTP([]byte{0x80, 111, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if peer.SendTo().IsValid() || peer.WriteRTCP([]byte{0x80, 200}) == nil {
		t.Error("an unlatched peer has somewhere to send")
	}

	server := net.UDPAddrFromAddrPort(tr.LocalAddr())
	rtpWith := func(ssrc uint32) []byte {
		return []byte{0x80, 111, 0, 1, 0, 0, 0, 0, byte(ssrc >> 24), byte(ssrc >> 16), byte(ssrc >> 8), byte(ssrc), 0xfc}
	}
	rrWith := func(ssrc uint32) []byte {
		return []byte{0x80, 201, 0, 1, byte(ssrc >> 24), byte(ssrc >> 16), byte(ssrc >> 8), byte(ssrc)}
	}
	send := func(c *net.UDPConn, pkt []byte) {
		t.Helper()
		if _, err := c.WriteToUDP(pkt, server); err != nil {
			t.Fatal(err)
		}
	}
	waitStats := func(ok func(Stats) bool) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !ok(tr.Stats()); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) { // bounds a failure only
				t.Fatalf("stats %+v", tr.Stats())
			}
		}
	}
	expectStream := func(c *net.UDPConn) {
		t.Helper()
		if err := peer.WriteRTP([]byte{0x80, 111, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1}, []byte("mix")); err != nil {
			t.Fatal(err)
		}
		b.Flush()
		buf := make([]byte, 64)
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
		n, err := c.Read(buf)
		if err != nil || string(buf[12:n]) != "mix" {
			t.Fatalf("stream not received where the peer latched: %v %x", err, buf[:n])
		}
	}

	first, moved, spoof := udpSocket(t), udpSocket(t), udpSocket(t)
	send(spoof, rtpWith(secret+1)) // a wrong SSRC
	send(spoof, []byte{0x80})      // too short to carry one
	waitStats(func(s Stats) bool { return s.UnknownSource == 2 })
	send(first, rrWith(secret)) // a listener opens its NAT with a receiver report
	<-rec.rtcp
	if peer.Remote() != addrOf(first) || peer.SendTo() != addrOf(first) {
		t.Fatalf("latched on %v, want %v", peer.Remote(), addrOf(first))
	}
	expectStream(first)
	send(first, rtpWith(0)) // once latched, the address alone routes
	<-rec.rtp

	// The NAT rebinds: the new source is followed once MoveInterval has
	// passed since the last move, not before.
	send(moved, rtpWith(secret))
	waitStats(func(s Stats) bool { return s.MoveLimited == 1 })
	clk.Advance(time.Second)
	send(moved, rtpWith(secret))
	<-rec.rtp
	if peer.Remote() != addrOf(moved) {
		t.Fatalf("did not follow the SSRC to %v: %v", addrOf(moved), peer.Remote())
	}
	expectStream(moved)
	send(spoof, rtpWith(secret+1))
	send(first, rtpWith(0)) // the old address, without the SSRC
	waitStats(func(s Stats) bool { return s.UnknownSource == 4 })

	s := tr.Stats()
	if s.Latched != 1 || s.AddressChanges != 1 || s.MoveLimited != 1 || s.Unlatched != 1 || s.RTPIn != 2 || s.RTCPIn != 1 {
		t.Errorf("stats %+v", s)
	}
	if len(rec.rtp) != 0 || len(rec.rtcp) != 0 {
		t.Error("a packet without the SSRC reached the receiver")
	}

	// Closing frees the SSRC and the address.
	_ = peer.Close()
	if tr.Peers() != 0 {
		t.Errorf("%d peers after Close", tr.Peers())
	}
	if _, err := tr.AddLatchingPeer(secret, b); err != nil {
		t.Errorf("SSRC not freed by Close: %v", err)
	}
}
