package impair

import (
	"encoding/binary"
	"math"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// echoServer is a UDP server on loopback that records who sent each
// packet and sends it back.
type echoServer struct {
	conn *net.UDPConn
	mu   sync.Mutex
	from map[netip.AddrPort]int // packets received per source
	done chan struct{}
}

func newEchoServer(t *testing.T) *echoServer {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &echoServer{conn: conn, from: map[netip.AddrPort]int{}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 2048)
		for {
			n, addr, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.from[addr]++
			s.mu.Unlock()
			_, _ = conn.WriteToUDPAddrPort(buf[:n], addr)
		}
	}()
	t.Cleanup(func() { conn.Close(); <-s.done })
	return s
}

func (s *echoServer) addr() netip.AddrPort { return s.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (s *echoServer) count(a netip.AddrPort) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.from[a]
}

// testClient is a client socket that counts the echoes it gets back.
type testClient struct {
	conn *net.UDPConn
	got  chan uint32 // sequence numbers of the echoes
	done chan struct{}
}

func newTestClient(t *testing.T) *testClient {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	c := &testClient{conn: conn, got: make(chan uint32, 4096), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]byte, 2048)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			if n >= 4 {
				c.got <- binary.BigEndian.Uint32(buf)
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-c.done })
	return c
}

func (c *testClient) addr() netip.AddrPort { return c.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

func (c *testClient) send(t *testing.T, to netip.AddrPort, seq uint32) {
	t.Helper()
	var pkt [160]byte
	binary.BigEndian.PutUint32(pkt[:], seq)
	if _, err := c.conn.WriteToUDPAddrPort(pkt[:], to); err != nil {
		t.Fatal(err)
	}
}

// hangGuard bounds the waits for what must happen: far beyond what the
// relay takes on the busiest machine, it only stops a broken relay from
// hanging the test.
const hangGuard = 20 * time.Second

// waitFor polls cond until it holds, failing after hangGuard.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(hangGuard); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRelayClean(t *testing.T) {
	srv := newEchoServer(t)
	r, err := NewRelay(srv.addr(), Config{}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a, b := newTestClient(t), newTestClient(t)

	// a is bound first: the test knows where it will come from.
	aUp, err := r.Bind(a.addr())
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := r.UpstreamAddr(a.addr()); !ok || got != aUp {
		t.Errorf("UpstreamAddr(a) = %v, %v; want %v", got, ok, aUp)
	}
	if _, ok := r.UpstreamAddr(b.addr()); ok {
		t.Error("b mapped before it sent")
	}

	// Each packet waits for its echo: every one must come back, in order.
	const n = 100
	for i := range n {
		for _, c := range []*testClient{a, b} {
			c.send(t, r.LocalAddr(), uint32(i))
			select {
			case seq := <-c.got:
				if seq != uint32(i) {
					t.Fatalf("echo %d came back as %d", i, seq)
				}
			case <-time.After(hangGuard):
				t.Fatalf("echo %d lost on a clean relay", i)
			}
		}
	}
	bUp, ok := r.UpstreamAddr(b.addr())
	if !ok || bUp == aUp {
		t.Fatalf("b's upstream address %v (mapped %v), a's %v: want distinct", bUp, ok, aUp)
	}
	if srv.count(aUp) != n || srv.count(bUp) != n || len(srv.from) != 2 {
		t.Errorf("server saw %v, want %d from each of %v and %v", srv.from, n, aUp, bUp)
	}
	up, down := r.Stats()
	if up.Sent != 2*n || up.Delivered != 2*n || down.Sent != 2*n || down.Delivered != 2*n {
		t.Errorf("stats up %+v down %+v, want %d sent and delivered each way", up, down, 2*n)
	}
	t.Logf("clean relay: up mean %v max %v, down mean %v max %v", up.MeanDelay, up.MaxDelay, down.MeanDelay, down.MaxDelay)
	if again, err := r.Bind(a.addr()); err != nil || again != aUp {
		t.Errorf("Bind(a) again = %v, %v; want %v", again, err, aUp)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
	if _, err := r.Bind(netip.MustParseAddrPort("127.0.0.1:9")); err == nil {
		t.Error("Bind after Close worked")
	}
}

func TestRelayLoss20(t *testing.T) {
	srv := newEchoServer(t)
	up, _ := Profile("loss-20")
	down := up
	up.Seed, down.Seed = 11, 12
	r, err := NewRelay(srv.addr(), up, down)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := newTestClient(t)
	cUp, err := r.Bind(c.addr())
	if err != nil {
		t.Fatal(err)
	}

	// Batches of 50, each let through before the next, so the kernel's
	// socket buffers never overflow and the only losses are the model's.
	// A batch is through when nothing is left anywhere: the relay has read
	// it all, its links hold nothing, the server got every packet the up
	// link delivered and echoed it, the client got every echo delivered.
	// Every snapshot on the way must add up, whatever the scheduling.
	const n, batch = 2000, 50
	echoes := 0
	for i := 0; i < n; i += batch {
		for j := i; j < i+batch; j++ {
			c.send(t, r.LocalAddr(), uint32(j))
		}
		waitFor(t, "a batch", func() bool {
			for {
				select {
				case <-c.got:
					echoes++
					continue
				default:
				}
				break
			}
			u, d := r.Stats()
			if !addsUp(u) || !addsUp(d) {
				t.Fatalf("stats up %+v down %+v do not add up", u, d)
			}
			return u.Sent == uint64(i+batch) && u.InFlight == 0 && u.Delivered == uint64(srv.count(cUp)) &&
				d.Sent == u.Delivered && d.InFlight == 0 && d.Delivered == uint64(echoes)
		})
	}
	u, d := r.Stats()
	upLoss := 1 - float64(srv.count(cUp))/n
	downLoss := 1 - float64(echoes)/float64(srv.count(cUp))
	t.Logf("loss-20 relay: up %d/%d arrived (loss %.2f%%), down %d/%d (loss %.2f%%)",
		srv.count(cUp), n, 100*upLoss, echoes, srv.count(cUp), 100*downLoss)
	if math.Abs(upLoss-0.2) > 0.03 || math.Abs(downLoss-0.2) > 0.03 {
		t.Errorf("loss up %.3f, down %.3f; want 0.20 ± 0.03", upLoss, downLoss)
	}
	if u.Lost+u.Delivered != n || d.Lost+d.Delivered != d.Sent {
		t.Errorf("stats up %+v down %+v do not add up", u, d)
	}
}

// addsUp reports whether st counts every packet once: delivered, lost,
// dropped or still in flight.
func addsUp(st LinkStats) bool {
	return st.Sent+st.Duplicated == st.Delivered+st.Lost+st.QueueDrops+st.InFlight
}

func TestRelayRejectsRemote(t *testing.T) {
	if _, err := NewRelay(netip.MustParseAddrPort("192.0.2.1:5004"), Config{}, Config{}); err == nil {
		t.Error("relay to a non-loopback upstream was made")
	}
}

// TestRelayRebind: a rebound client reaches the server from a new port,
// and the server's answers to that port still reach it; RebindEvery
// rebinds every client on its own.
func TestRelayRebind(t *testing.T) {
	srv := newEchoServer(t)
	r, err := NewRelay(srv.addr(), Config{}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a := newTestClient(t)
	echo := func(i uint32) {
		t.Helper()
		a.send(t, r.LocalAddr(), i)
		select {
		case seq := <-a.got:
			if seq != i {
				t.Fatalf("echo %d came back as %d", i, seq)
			}
		case <-time.After(hangGuard):
			t.Fatalf("echo %d lost", i)
		}
	}
	before, err := r.Bind(a.addr())
	if err != nil {
		t.Fatal(err)
	}
	echo(0)
	after, err := r.Rebind(a.addr())
	if err != nil {
		t.Fatal(err)
	}
	if after == before {
		t.Fatalf("rebound to the same address %v", after)
	}
	if got, _ := r.UpstreamAddr(a.addr()); got != after {
		t.Errorf("UpstreamAddr %v, want %v", got, after)
	}
	echo(1)
	if srv.count(before) != 1 || srv.count(after) != 1 {
		t.Errorf("server saw %v: want one packet from %v and one from %v", srv.from, before, after)
	}
	if _, err := r.Rebind(netip.MustParseAddrPort("127.0.0.1:9")); err == nil {
		t.Error("rebound a client never seen")
	}

	stop := r.RebindEvery(10 * time.Millisecond)
	for deadline := time.Now().Add(hangGuard); r.Rebinds() < 4; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d rebinds", r.Rebinds())
		}
	}
	stop()
	n := r.Rebinds()
	echo(2) // through the last mapping
	if r.Rebinds() != n {
		t.Error("rebinding went on after stop")
	}
	stop() // again: a no-op
	if err := r.Close(); err != nil {
		t.Error(err)
	}
}
