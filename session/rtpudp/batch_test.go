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

// BenchmarkQueuePeers is a large room's tick queueing one packet to each
// of 10,000 listeners (an op is one listener's), as the engine does, with the engine's prefetches
// (engine.Prefetcher) and without. Between rounds 32 MB are written, as
// 20 ms of other work would, so that each peer's state comes from memory
// as it does on a busy server. queue-ns/op is one listener's share before
// the flush; the flush (the kernel's work) is not timed.
func BenchmarkQueuePeers(b *testing.B) {
	const listeners = 10000
	tr := listen(b)
	ports := wildcardPorts(b, 16)
	batch := tr.NewBatch()
	peers := make([]*Peer, listeners)
	for i := range peers {
		remote, to := manyAddrs(i, ports)
		p, err := tr.AddPeer(remote, to, batch)
		if err != nil {
			b.Fatal(err)
		}
		peers[i] = p
	}
	header := []byte{0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}
	payload := make([]byte, 80)
	evict := make([]byte, 32<<20)
	for _, ahead := range []bool{true, false} {
		name := "prefetch"
		if !ahead {
			name = "no-prefetch"
		}
		b.Run(name, func(b *testing.B) {
			var queueing time.Duration
			n := 0
			b.ReportAllocs()
			b.ResetTimer()
			for ; n < b.N; n += listeners {
				b.StopTimer()
				for i := 0; i < len(evict); i += 64 {
					evict[i]++
				}
				b.StartTimer()
				t0 := time.Now()
				for i, p := range peers {
					if ahead && i+2 < len(peers) {
						peers[i+2].Prefetch(2)
					}
					if ahead && i+1 < len(peers) {
						peers[i+1].Prefetch(1)
					}
					if err := p.WriteRTP(header, payload); err != nil {
						b.Fatal(err)
					}
				}
				queueing += time.Since(t0)
				b.StopTimer()
				batch.Flush()
				b.StartTimer()
			}
			b.ReportMetric(float64(queueing.Nanoseconds())/float64(n), "queue-ns/op")
		})
	}
}
