package rtpudp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMutedInputIsNotLost: while a large batch leaves, the socket is out of
// the reader's epoll descriptor (muteInput). A datagram that arrives then
// waits on the socket, and Serve's reader gets it once the send is over,
// with no Drain; the reader also keeps getting what comes later. A
// transport that did not put the socket back would hand over nothing.
func TestMutedInputIsNotLost(t *testing.T) {
	tr := listen(t)
	serve(t, tr)
	speaker, rec := speakerPeer(t, tr)
	to := net.UDPAddrFromAddrPort(tr.LocalAddr())
	rtp := []byte{0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0xfc, 1, 2}

	// The reader is running and waiting once it has handed over one.
	if _, err := speaker.WriteToUDP(rtp, to); err != nil {
		t.Fatal(err)
	}
	expectRTP(t, rec, rtp)

	tr.sock.muteInput()
	if _, err := speaker.WriteToUDP(rtp, to); err != nil {
		t.Fatal(err)
	}
	// Wait (at most 10 s) until the datagram waits on the socket, so that
	// it arrived while muted (or the reader, still finishing its last
	// read, took it before it could wait).
	for deadline := time.Now().Add(10 * time.Second); waiting(t, tr) == 0 && len(rec.rtp) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the datagram never reached the socket")
		}
		time.Sleep(time.Millisecond)
	}
	tr.sock.unmuteInput()
	expectRTP(t, rec, rtp)

	// A batch of many chunks mutes and unmutes the socket around its
	// send; input that comes after it still wakes the reader.
	batch := tr.NewBatch()
	listener := udpSocket(t)
	lp, err := tr.AddPeer(addrOf(listener), netip.AddrPort{}, batch)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 * tr.cfg.BatchSize {
		if err := lp.WriteRTP(rtp[:12], rtp[12:]); err != nil {
			t.Fatal(err)
		}
	}
	batch.SendPart(0, 1)
	if tr.sock.muted != 0 {
		t.Fatalf("the socket is still muted by %d senders after the send", tr.sock.muted)
	}
	if _, err := speaker.WriteToUDP(rtp, to); err != nil {
		t.Fatal(err)
	}
	expectRTP(t, rec, rtp)
}

// waiting is how many bytes wait on the transport's socket.
func waiting(t *testing.T, tr *Transport) int {
	n, err := unix.IoctlGetInt(tr.sock.fd, unix.SIOCINQ)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func expectRTP(t *testing.T, rec *recorder, want []byte) {
	t.Helper()
	select {
	case p := <-rec.rtp:
		if string(p) != string(want) {
			t.Fatalf("the reader handed over %x, want %x", p, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the reader did not hand over the datagram within 10 s")
	}
}

// TestSocketSetsDontFragment: the RTP socket sends with the don't-fragment
// bit and ignores the path MTU (IP_PMTUDISC_PROBE), which spares the kernel
// an IP identifier per datagram.
func TestSocketSetsDontFragment(t *testing.T) {
	tr := listen(t)
	v, err := unix.GetsockoptInt(tr.sock.fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER)
	if err != nil {
		t.Fatal(err)
	}
	if v != unix.IP_PMTUDISC_PROBE {
		t.Fatalf("IP_MTU_DISCOVER is %d, want IP_PMTUDISC_PROBE (%d)", v, unix.IP_PMTUDISC_PROBE)
	}
}

// BenchmarkMute is what muting the reader's epoll entry around a send
// costs (two epoll_ctl calls), against which muteFrom weighs the
// wait-queue walks it spares.
func BenchmarkMute(b *testing.B) {
	tr := listen(b)
	b.ReportAllocs()
	for b.Loop() {
		tr.sock.muteInput()
		tr.sock.unmuteInput()
	}
}
