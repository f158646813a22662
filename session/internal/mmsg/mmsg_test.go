package mmsg_test

import (
	"fmt"
	"net"
	"testing"
	"time"

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

// A refused datagram is counted and skipped; the ones after it still go,
// in order, each made of its buffers.
func TestFlushSkipsRefused(t *testing.T) {
	from, to := listen(t), listen(t)
	q := mmsg.NewQueue(from, 4, 2)
	bad := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 0} // port 0: EINVAL
	dst := to.LocalAddr()
	for i, a := range []net.Addr{dst, bad, dst, dst} {
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
	h, p, dst := []byte("h"), []byte("p"), to.LocalAddr()
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
		q.Add(to.LocalAddr(), []byte(h), payload)
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
