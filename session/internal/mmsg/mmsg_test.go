package mmsg_test

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/handsup-audio/handsup/session/internal/mmsg"
)

type counts struct{ sent, syscalls, failed int }

func (c *counts) Flushed(sent, syscalls, failed int) {
	c.sent += sent
	c.syscalls += syscalls
	c.failed += failed
}

func listen(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func addr(c *net.UDPConn) *mmsg.Addr { return mmsg.NewAddr(c.LocalAddr().(*net.UDPAddr).AddrPort()) }

// A refused datagram is counted and skipped; the ones after it still go,
// in order, each made of its buffers.
func TestFlushSkipsRefused(t *testing.T) {
	from, to := listen(t), listen(t)
	q := mmsg.NewQueue(from, 4, 2)
	bad := mmsg.NewAddr(netip.MustParseAddrPort("127.0.0.1:0")) // port 0: EINVAL
	dst := addr(to)
	for i, a := range []*mmsg.Addr{dst, bad, dst, dst} {
		if !q.Add(a, []byte{'h', byte('0' + i)}, []byte("-payload")) {
			t.Fatalf("Add %d refused", i)
		}
	}
	if !q.Full() || q.Add(dst, []byte("x")) {
		t.Fatal("a full queue took a fifth datagram")
	}
	var c counts
	q.Flush(&c)
	if c.sent != 3 || c.failed != 1 || c.syscalls < 2 || q.Len() != 0 {
		t.Fatalf("flushed %+v, %d left", c, q.Len())
	}
	_ = to.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 64)
	for _, want := range []string{"h0-payload", "h2-payload", "h3-payload"} {
		n, err := to.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("read %q (%v), want %q", buf[:n], err, want)
		}
	}
}

func TestAddAllocatesNothing(t *testing.T) {
	from, to := listen(t), listen(t)
	q := mmsg.NewQueue(from, 64, 2)
	h, p, dst := []byte("h"), []byte("p"), addr(to)
	if n := testing.AllocsPerRun(100, func() {
		q.Add(dst, h, p)
		if q.Full() {
			q.Flush(nil)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per Add", n)
	}
}

// Three datagrams leave in one sendmmsg call.
func ExampleQueue() {
	from, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer from.Close()
	to, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer to.Close()

	q := mmsg.NewQueue(from, 16, 2) // header and payload apart
	payload := []byte("shared payload")
	for _, h := range []string{"a:", "b:", "c:"} {
		q.Add(mmsg.NewAddr(to.LocalAddr().(*net.UDPAddr).AddrPort()), []byte(h), payload)
	}
	var c counts
	q.Flush(&c)
	fmt.Printf("%d sent in %d call\n", c.sent, c.syscalls)
	buf := make([]byte, 64)
	n, _ := to.Read(buf)
	fmt.Println(string(buf[:n]))
	// Output:
	// 3 sent in 1 call
	// a:shared payload
}

// An IPv6 socket sends to an IPv4 listener through its mapped address.
func TestDualStackSendsToIPv4(t *testing.T) {
	from, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6unspecified})
	if err != nil {
		t.Skip("no IPv6:", err)
	}
	defer from.Close()
	to := listen(t)
	q := mmsg.NewQueue(from, 4, 2)
	q.Add(addr(to), []byte("v4 "), []byte("from v6"))
	var c counts
	q.Flush(&c)
	_ = to.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 64)
	n, err := to.Read(buf)
	if err != nil || string(buf[:n]) != "v4 from v6" || c.sent != 1 {
		t.Fatalf("read %q (%v), flushed %+v", buf[:n], err, c)
	}
}

// Queues on one blocking descriptor send at once from two goroutines,
// every datagram arriving.
func TestFDQueuesSendTogether(t *testing.T) {
	to := listen(t)
	_ = to.SetReadBuffer(1 << 20)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	const each = 100
	var wg sync.WaitGroup
	var c [2]counts
	for g := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := mmsg.NewFDQueue(fd, unix.AF_INET, each, 1)
			for range each {
				q.Add(addr(to), []byte("x"))
			}
			q.Flush(&c[g])
		}()
	}
	wg.Wait()
	if c[0].sent+c[1].sent != 2*each {
		t.Fatalf("sent %+v", c)
	}
	_ = to.SetReadDeadline(time.Now().Add(20 * time.Second))
	buf := make([]byte, 8)
	for i := range 2 * each {
		if _, err := to.Read(buf); err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
	}
}

// SendTo sends one datagram at once to a prepared address, from an IPv4
// socket and from a dual-stack IPv6 one, allocating nothing; a refused
// one is an error.
func TestSendTo(t *testing.T) {
	to := listen(t)
	dst := addr(to)
	for _, family := range []int{unix.AF_INET, unix.AF_INET6} {
		fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			if family == unix.AF_INET6 {
				t.Log("no IPv6:", err)
				continue
			}
			t.Fatal(err)
		}
		defer unix.Close(fd)
		v6 := family == unix.AF_INET6
		pkt := []byte(fmt.Sprint("report from family ", family))
		if allocs := testing.AllocsPerRun(10, func() {
			if err := mmsg.SendTo(fd, v6, dst, pkt); err != nil {
				t.Fatal(err)
			}
		}); allocs != 0 {
			t.Errorf("family %d: %v allocations a send", family, allocs)
		}
		_ = to.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 64)
		for range 11 { // AllocsPerRun runs once more to warm up
			n, err := to.Read(buf)
			if err != nil || string(buf[:n]) != string(pkt) {
				t.Fatalf("family %d: read %q (%v)", family, buf[:n], err)
			}
		}
		if err := mmsg.SendTo(fd, v6, mmsg.NewAddr(netip.MustParseAddrPort("127.0.0.1:0")), pkt); err == nil {
			t.Errorf("family %d: a send to port 0 succeeded", family)
		}
	}
}

// BenchmarkBatch is the send path of one tick's batch: 256 datagrams of a
// 12-byte header and a shared 80-byte payload, each to a prepared address,
// queued and sent with sendmmsg on loopback. It allocates nothing.
func BenchmarkBatch(b *testing.B) {
	for _, tc := range []struct {
		name string
		q    func(from *net.UDPConn) *mmsg.Queue
	}{
		{"netpoller", func(from *net.UDPConn) *mmsg.Queue { return mmsg.NewQueue(from, 256, 2) }},
		{"blocking-fd", func(*net.UDPConn) *mmsg.Queue {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { unix.Close(fd) })
			return mmsg.NewFDQueue(fd, unix.AF_INET, 256, 2)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			from, to := listen(b), listen(b)
			go func() { // drain, so that the receiver's buffer never fills
				buf := make([]byte, 2048)
				for {
					if _, err := to.Read(buf); err != nil {
						return
					}
				}
			}()
			q := tc.q(from)
			dsts := make([]*mmsg.Addr, 256)
			for i := range dsts {
				dsts[i] = addr(to)
			}
			header, payload := make([]byte, 12), make([]byte, 80)
			var c counts
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for _, d := range dsts {
					q.Add(d, header, payload)
				}
				q.Flush(&c)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(dsts)), "ns/datagram")
		})
	}
}
