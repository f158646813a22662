package rtpudp

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestDrainStampsArrival: Drain hands over what waits on the socket
// without Serve's reader, each packet with how long it waited since the
// kernel received it (its receive timestamp), not since it was read.
func TestDrainStampsArrival(t *testing.T) {
	tr := listen(t) // no Serve: only Drain reads
	speaker := udpSocket(t)
	peer, err := tr.AddPeer(addrOf(speaker), netip.AddrPort{}, tr.NewBatch())
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	peer.Bind(rec)

	tr.Drain() // nothing there: returns at once
	if len(rec.rtp) != 0 {
		t.Fatal("Drain handed over a packet nobody sent")
	}
	rtp := []byte{0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0xfc, 1, 2}
	const hold = 60 * time.Millisecond
	before := time.Now()
	if _, err := speaker.WriteToUDP(rtp, net.UDPAddrFromAddrPort(tr.LocalAddr())); err != nil {
		t.Fatal(err)
	}
	time.Sleep(hold) // the packet waits on the socket, as for a busy reader
	tr.Drain()
	elapsed := time.Since(before)
	select {
	case got := <-rec.rtp:
		if string(got) != string(rtp) {
			t.Fatalf("Drain handed over %x, want %x", got, rtp)
		}
	default:
		t.Fatal("Drain did not hand over the packet waiting on the socket")
	}
	waited := <-rec.waited
	// The kernel stamps the packet between the send and the Drain: it
	// cannot have waited longer than that, and the send was over before
	// the hold began (a loopback send delivers as it goes, or soon after
	// on a busy machine: half the hold is margin enough).
	if waited > elapsed || waited < hold/2 {
		t.Errorf("the packet waited %v by its receive timestamp; want between %v and %v (the hold, and the time since the send)", waited, hold/2, elapsed)
	}
	if st := tr.Stats(); st.RTPIn != 1 || st.ReadErrors != 0 {
		t.Errorf("counted %d RTP packets in and %d read errors, want 1 and 0", st.RTPIn, st.ReadErrors)
	}

	_ = tr.Close()
	tr.Drain() // after Close: nothing, and no panic
}
