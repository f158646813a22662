package server

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"

	"github.com/handsup-audio/handsup/bench/impair"
)

// TestListenerBehindRebindingNAT: a listener joins without rtp.addr,
// behind the impairment relay acting as a NAT that rebinds its source port
// every 1.5 s. It opens its NAT with receiver reports carrying its join
// SSRC, as a real client would every so often; the server latches onto it,
// follows each rebinding, and the listener keeps hearing the room with
// gaps of at most a second. A spoofed source without the SSRC is dropped
// and counted, and moves nobody.
func TestListenerBehindRebindingNAT(t *testing.T) {
	ts := startServer(t, "")
	ts.mustCall("POST", "/v1/rooms", `{"id":"r"}`, 201, nil)
	server := ts.s.RTPAddr()
	relay, err := impair.NewRelay(server, impair.Config{}, impair.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()

	spk := newUDPClient(t, net.UDPAddrFromAddrPort(server))
	ts.mustCall("POST", "/v1/rooms/r/participants",
		fmt.Sprintf(`{"id":"s","role":"speaker","rtp":{"addr":%q}}`, spk.addr()), 201, nil)
	lis := newUDPClient(t, net.UDPAddrFromAddrPort(relay.LocalAddr()))
	var joined struct {
		JoinSSRC uint32 `json:"join_ssrc"`
		RTPAddr  string `json:"rtp_addr"`
	}
	ts.mustCall("POST", "/v1/rooms/r/participants", `{"id":"l","role":"listener"}`, 201, &joined)
	if joined.JoinSSRC == 0 || joined.RTPAddr != "" {
		t.Fatalf("join answer %+v: want a join SSRC and no address yet", joined)
	}
	rr, err := (&rtcp.ReceiverReport{SSRC: joined.JoinSSRC}).Marshal()
	if err != nil {
		t.Fatal(err)
	}

	// The listener reports every 100 ms; the NAT rebinds every 1.5 s.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			lis.send(nil, rr)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	// Rebind midway between two reports, so that each rebinding loses
	// what the server sends in the 50 ms before the next one.
	time.Sleep(50 * time.Millisecond)
	stopRebinding := relay.RebindEvery(1500 * time.Millisecond)
	mark := lis.mark()
	talk(spk, 440, 300) // 6 s
	stopRebinding()
	time.Sleep(200 * time.Millisecond) // a report from the last mapping
	close(stop)
	wg.Wait()

	// A stranger presenting another SSRC is dropped and moves nobody.
	before := ts.s.udp.Stats().UnknownSource
	spoof := newUDPClient(t, net.UDPAddrFromAddrPort(server))
	pkt := make([]byte, 13)
	spoof.header(pkt[:12], 111)
	binary.BigEndian.PutUint32(pkt[8:], joined.JoinSSRC+1)
	spoof.send(nil, pkt)
	for deadline := time.Now().Add(20 * time.Second); ts.s.udp.Stats().UnknownSource == before; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) { // bounds a failure only
			t.Fatal("the spoofed datagram was not counted as unknown_source")
		}
	}
	var view struct {
		RTPAddr string `json:"rtp_addr"`
	}
	ts.mustCall("GET", "/v1/rooms/r/participants/l", "", 200, &view)
	if up, _ := relay.UpstreamAddr(netip.MustParseAddrPort(lis.addr())); view.RTPAddr != up.String() {
		t.Errorf("the listener is at %s, its NAT at %s", view.RTPAddr, up)
	}

	st := ts.s.udp.Stats()
	rebinds := relay.Rebinds()
	t.Logf("rebinds %d, latched %d, address changes %d, moves refused %d", rebinds, st.Latched, st.AddressChanges, st.MoveLimited)
	if rebinds < 3 || st.Latched != 1 || st.AddressChanges < uint64(rebinds)-1 {
		t.Errorf("%d rebinds, %d latches, %d address changes: want every rebinding followed", rebinds, st.Latched, st.AddressChanges)
	}

	// Every rebinding costs at most a second of the stream: the server's
	// sequence numbers, as received, never jump by more than 50.
	lis.mu.Lock()
	var seqs []uint16
	for _, p := range lis.raw {
		seqs = append(seqs, binary.BigEndian.Uint16(p[2:]))
	}
	lis.mu.Unlock()
	if len(seqs) < 150 {
		t.Fatalf("the listener received %d packets in 6 s", len(seqs))
	}
	maxGap := 0
	for i := 1; i < len(seqs); i++ {
		if gap := int(seqs[i] - seqs[i-1]); gap > maxGap {
			maxGap = gap
		}
	}
	t.Logf("received %d packets of %d sent, largest sequence gap %d (%d ms)", len(seqs), int(seqs[len(seqs)-1]-seqs[0])+1, maxGap, 20*(maxGap-1))
	if maxGap > 50 {
		t.Errorf("a gap of %d packets: more than a second lost to a rebinding", maxGap)
	}
	if db := lis.levelSince(mark, 440); db < -30 {
		t.Errorf("the listener heard the speaker at %.1f dB", db)
	}
}
