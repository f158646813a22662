package rtpudp

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// A tick's packets, queued in chunks of BatchSize, leave once each when
// the parts of SendPart run at once: every part takes its share of the
// chunks, and a Flush after them finds nothing left.
func TestSendPartsShareTheChunks(t *testing.T) {
	tr, err := Listen(Config{Addr: "127.0.0.1:0", BatchSize: 4, NoRTCPPort: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	batch := tr.NewBatch()
	const n = 10
	rxs := make([]*net.UDPConn, n)
	for i := range n {
		rxs[i] = udpSocket(t)
		to := netip.MustParseAddrPort(rxs[i].LocalAddr().String())
		p, err := tr.AddPeer(to, netip.AddrPort{}, batch)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WriteRTP([]byte(fmt.Sprintf("h%02d", i)), []byte("-payload")); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for part := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			batch.SendPart(part, 2)
		}()
	}
	wg.Wait()
	batch.Flush()
	if st := tr.Stats(); st.PacketsOut != n || st.SendSyscalls != 3 || st.SendErrors != 0 {
		t.Fatalf("stats %+v: want %d datagrams in 3 sendmmsg calls (chunks of 4, 4 and 2)", st, n)
	}
	buf := make([]byte, 64)
	for i, rx := range rxs {
		_ = rx.SetReadDeadline(time.Now().Add(20 * time.Second))
		k, err := rx.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("h%02d-payload", i); string(buf[:k]) != want {
			t.Errorf("listener %d received %q, want %q", i, buf[:k], want)
		}
	}
}
