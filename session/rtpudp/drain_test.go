package rtpudp

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestDrain: Drain hands over what waits on the socket, at once and
// without Serve's reader, routed and counted as the reader would; with
// nothing there, or after Close, it returns at once.
func TestDrain(t *testing.T) {
	tr := listen(t) // no Serve: only Drain reads
	speaker, rec := speakerPeer(t, tr)

	tr.Drain()
	if len(rec.rtp) != 0 {
		t.Fatal("Drain handed over a packet nobody sent")
	}
	rtp := []byte{0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0xfc, 1, 2}
	const n = 3
	for range n {
		if _, err := speaker.WriteToUDP(rtp, net.UDPAddrFromAddrPort(tr.LocalAddr())); err != nil {
			t.Fatal(err)
		}
	}
	// A loopback datagram is on the socket when the send returns, or soon
	// after on a busy machine: drain until all have come, for at most 10 s.
	got := 0
	for deadline := time.Now().Add(10 * time.Second); got < n && time.Now().Before(deadline); {
		tr.Drain()
		for len(rec.rtp) > 0 {
			if p := <-rec.rtp; string(p) != string(rtp) {
				t.Fatalf("Drain handed over %x, want %x", p, rtp)
			}
			got++
		}
		if got < n {
			time.Sleep(time.Millisecond)
		}
	}
	if got != n {
		t.Fatalf("Drain handed over %d of the %d packets waiting", got, n)
	}
	if st := tr.Stats(); st.RTPIn != n || st.ReadErrors != 0 {
		t.Errorf("counted %d RTP packets in and %d read errors, want %d and 0", st.RTPIn, st.ReadErrors, n)
	}
	_ = tr.Close()
	tr.Drain() // after Close: nothing, and no panic
}

// TestReadOnDrain: with Config.ReadOnDrain, Serve leaves the RTP socket
// alone: a datagram waits there until Drain hands it over, and Serve still
// returns when the transport closes.
func TestReadOnDrain(t *testing.T) {
	tr, err := Listen(Config{Addr: "127.0.0.1:0", NoRTCPPort: true, ReadOnDrain: true})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- tr.Serve(context.Background()) }()
	speaker, rec := speakerPeer(t, tr)
	rtp := []byte{0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0xfc, 1, 2}
	if _, err := speaker.WriteToUDP(rtp, net.UDPAddrFromAddrPort(tr.LocalAddr())); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); waiting(t, tr) == 0; {
		if len(rec.rtp) > 0 {
			t.Fatal("Serve read the RTP socket")
		}
		if time.Now().After(deadline) {
			t.Fatal("the datagram never reached the socket")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // a reader, if there were one, would take it now
	if len(rec.rtp) > 0 || waiting(t, tr) == 0 {
		t.Fatal("Serve read the RTP socket")
	}
	tr.Drain()
	select {
	case p := <-rec.rtp:
		if string(p) != string(rtp) {
			t.Fatalf("Drain handed over %x, want %x", p, rtp)
		}
	default:
		t.Fatal("Drain did not hand over the datagram waiting")
	}
	_ = tr.Close()
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after Close")
	}
}

// speakerPeer declares a speaker's socket as a peer of tr and records what
// tr hands over from it.
func speakerPeer(t *testing.T, tr *Transport) (*net.UDPConn, *recorder) {
	t.Helper()
	speaker := udpSocket(t)
	peer, err := tr.AddPeer(addrOf(speaker), netip.AddrPort{}, tr.NewBatch())
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	peer.Bind(rec)
	return speaker, rec
}
