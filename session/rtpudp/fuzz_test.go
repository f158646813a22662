package rtpudp

import (
	"io"
	"log/slog"
	"net/netip"
	"testing"
)

// FuzzReceive routes arbitrary datagrams from a declared peer, its
// receive address, a stranger and a latching peer's future address, on
// either socket: nothing panics, and each datagram lands in exactly one
// counter (taken in, or dropped for one reason).
func FuzzReceive(f *testing.F) {
	const join = 0x5ec4e7
	f.Add([]byte{0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0x5e, 0xc4, 0xe7, 0xfc}, uint8(3), false) // a join SSRC's RTP
	f.Add([]byte{0x80, 201, 0, 1, 0, 0x5e, 0xc4, 0xe7}, uint8(3), false)                   // its receiver report
	f.Add([]byte{0x80, 201, 0, 1, 0, 0, 0, 1}, uint8(1), true)
	f.Add([]byte{0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xfc}, uint8(0), false)
	f.Add([]byte{0x80}, uint8(2), true)
	f.Add(make([]byte, 1501), uint8(0), false)
	f.Fuzz(func(t *testing.T, pkt []byte, src uint8, rtcpPort bool) {
		tr, err := Listen(Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		port := tr.LocalAddr().Port() // +1 is the RTCP socket
		remote := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port+2)
		recvAt := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), port+2)
		b := tr.NewBatch()
		p, err := tr.AddPeer(remote, recvAt, b)
		if err != nil {
			t.Fatal(err)
		}
		p.Bind(newRecorder())
		if _, err := tr.AddLatchingPeer(join, b); err != nil {
			t.Fatal(err)
		}
		from := []netip.AddrPort{remote, recvAt, netip.MustParseAddrPort("192.0.2.1:9"), tr.LocalAddr(),
			netip.MustParseAddrPort("127.0.0.3:5000")}[int(src)%5]
		total := func() uint64 {
			s := tr.Stats()
			return s.RTPIn + s.RTCPIn + s.UnknownSource + s.NotRTCP + s.MoveLimited + s.Oversized + s.Refused.Own
		}
		for i := range 2 { // twice: the second may find a latched address
			before := total()
			tr.receive(pkt, from, rtcpPort)
			if d := total() - before; d != 1 {
				t.Fatalf("datagram %d from %v counted %d times: %+v", i, from, d, tr.Stats())
			}
		}
		_ = p.WriteRTP([]byte{0x80, 111, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, []byte{1})
	})
}
