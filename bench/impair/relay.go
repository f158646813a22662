package impair

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Relay is a UDP relay on loopback in front of one upstream server. Each
// client that sends to LocalAddr (or is Bound) gets its own upstream
// socket, so the server sees one source address per client, and its own
// pair of Links: client→server traffic crosses one built from the up
// Config, server→client traffic one built from down. Client n (counting
// from 0 in the order clients are first seen or bound) has links seeded
// from the Config's Seed and n (client 0's draw as New's would), so runs
// with the same order repeat. The
// links run on the real clock, with Start and Stop counted from NewRelay.
type Relay struct {
	upstream *net.UDPAddr
	up, down Config
	conn     *net.UDPConn // where clients send
	epoch    time.Time

	mu      sync.Mutex
	clients map[netip.AddrPort]*client
	list    []*client
	closed  bool
	rebinds int

	wake [2]chan struct{} // per direction: a link has a new packet
	done chan struct{}
	wg   sync.WaitGroup
}

// Directions, indexing Relay.wake and client.links.
const (
	upDir   = 0 // client → server
	downDir = 1 // server → client
)

// client is one client's mapping: its upstream socket and its two links.
type client struct {
	addr  netip.AddrPort
	conn  atomic.Pointer[net.UDPConn] // connected to the upstream server; Rebind replaces it
	links [2]*Link
	out   [2]func(pkt []byte, at time.Time) // writes a delivered packet on
}

// maxDatagram is the largest UDP payload the relay reads.
const maxDatagram = 65535

// NewRelay starts a relay to upstream, which must be an IPv4 loopback
// address, impairing client→server traffic as up says and server→client
// traffic as down says.
func NewRelay(upstream netip.AddrPort, up, down Config) (*Relay, error) {
	upstream = netip.AddrPortFrom(upstream.Addr().Unmap(), upstream.Port())
	if !upstream.Addr().Is4() || !upstream.Addr().IsLoopback() {
		return nil, fmt.Errorf("impair: upstream %v is not an IPv4 loopback address", upstream)
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	r := &Relay{
		upstream: net.UDPAddrFromAddrPort(upstream),
		up:       up,
		down:     down,
		conn:     conn,
		epoch:    time.Now(),
		clients:  make(map[netip.AddrPort]*client),
		wake:     [2]chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)},
		done:     make(chan struct{}),
	}
	r.wg.Add(3)
	go r.readClients()
	go r.pump(upDir)
	go r.pump(downDir)
	return r, nil
}

// LocalAddr is the address clients send to.
func (r *Relay) LocalAddr() netip.AddrPort {
	return r.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Bind creates client's mapping now, before it sends, and returns the
// address the server will see its packets come from. Binding a client
// already mapped returns its existing address.
func (r *Relay) Bind(client netip.AddrPort) (netip.AddrPort, error) {
	c, err := r.client(normal(client))
	if err != nil {
		return netip.AddrPort{}, err
	}
	return c.conn.Load().LocalAddr().(*net.UDPAddr).AddrPort(), nil
}

// Rebind gives client a new upstream socket, as a NAT does when its
// mapping expires or it rebinds: from now on the server sees the client's
// packets come from a new port, and what the server sends to the old one
// is lost. It returns the new address.
func (r *Relay) Rebind(client netip.AddrPort) (netip.AddrPort, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.clients[normal(client)]
	switch {
	case r.closed:
		return netip.AddrPort{}, net.ErrClosed
	case !ok:
		return netip.AddrPort{}, fmt.Errorf("impair: client %v is not mapped", client)
	}
	conn, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, r.upstream)
	if err != nil {
		return netip.AddrPort{}, err
	}
	old := c.conn.Swap(conn)
	_ = old.Close() // its reader returns
	r.rebinds++
	r.wg.Add(1)
	go r.readServer(c, conn)
	return conn.LocalAddr().(*net.UDPAddr).AddrPort(), nil
}

// RebindEvery turns on NAT-rebinding mode: every period, until stop is
// called or the relay closes, every client mapped at the time is rebound
// (Rebind). stop waits for a rebinding under way to end.
func (r *Relay) RebindEvery(period time.Duration) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			select {
			case <-r.done:
				return
			case <-quit:
				return
			case <-tick.C:
				r.mu.Lock()
				cs := append([]*client(nil), r.list...)
				r.mu.Unlock()
				for _, c := range cs {
					_, _ = r.Rebind(c.addr)
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}

// Rebinds is how many times a client's upstream socket was replaced.
func (r *Relay) Rebinds() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rebinds
}

// UpstreamAddr returns the address the server sees client's packets come
// from, if client is mapped.
func (r *Relay) UpstreamAddr(client netip.AddrPort) (netip.AddrPort, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.clients[normal(client)]
	if !ok {
		return netip.AddrPort{}, false
	}
	return c.conn.Load().LocalAddr().(*net.UDPAddr).AddrPort(), true
}

// Stats sums the links of every client, per direction.
func (r *Relay) Stats() (up, down LinkStats) {
	r.mu.Lock()
	cs := append([]*client(nil), r.list...)
	r.mu.Unlock()
	for _, c := range cs {
		up = up.merge(c.links[upDir].Stats())
		down = down.merge(c.links[downDir].Stats())
	}
	return up, down
}

// ClientStats returns one client's link stats, if client is mapped.
func (r *Relay) ClientStats(client netip.AddrPort) (up, down LinkStats, ok bool) {
	r.mu.Lock()
	c, ok := r.clients[normal(client)]
	r.mu.Unlock()
	if !ok {
		return LinkStats{}, LinkStats{}, false
	}
	return c.links[upDir].Stats(), c.links[downDir].Stats(), true
}

// Close stops the relay and closes its sockets. Packets in flight are
// dropped.
func (r *Relay) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	close(r.done)
	errs := []error{r.conn.Close()}
	for _, c := range r.list {
		errs = append(errs, c.conn.Load().Close())
	}
	r.mu.Unlock()
	r.wg.Wait()
	return errors.Join(errs...)
}

// normal unmaps an IPv4-mapped address, as the relay's IPv4 socket
// reports addresses.
func normal(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// client returns addr's mapping, creating it if need be.
func (r *Relay) client(addr netip.AddrPort) (*client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, net.ErrClosed
	}
	if c, ok := r.clients[addr]; ok {
		return c, nil
	}
	conn, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, r.upstream)
	if err != nil {
		return nil, err
	}
	n := uint64(len(r.list))
	c := &client{addr: addr, links: [2]*Link{newLink(r.up, n), newLink(r.down, n)}}
	c.conn.Store(conn)
	for _, l := range c.links {
		l.SetEpoch(r.epoch)
	}
	// Write errors (the server or client gone) are a lost packet, as on a
	// real path.
	c.out[upDir] = func(pkt []byte, _ time.Time) { _, _ = c.conn.Load().Write(pkt) }
	c.out[downDir] = func(pkt []byte, _ time.Time) { _, _ = r.conn.WriteToUDPAddrPort(pkt, addr) }
	r.clients[addr] = c
	r.list = append(r.list, c)
	r.wg.Add(1)
	go r.readServer(c, conn)
	return c, nil
}

// send puts pkt on c's link in direction dir and wakes that direction.
func (r *Relay) send(c *client, dir int, pkt []byte) {
	c.links[dir].Send(pkt, time.Now())
	select {
	case r.wake[dir] <- struct{}{}:
	default:
	}
}

// readClients takes packets from clients into their up links.
func (r *Relay) readClients() {
	defer r.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, addr, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		c, err := r.client(normal(addr))
		if err != nil {
			continue // closed, or out of sockets: the packet is lost
		}
		r.send(c, upDir, buf[:n])
	}
}

// readServer takes packets from the server to c, arriving on conn, into
// c's down link, until conn closes (Close, or Rebind replacing it).
func (r *Relay) readServer(c *client, conn *net.UDPConn) {
	defer r.wg.Done()
	buf := make([]byte, maxDatagram)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // ICMP port unreachable while the server is down, and the like
		}
		r.send(c, downDir, buf[:n])
	}
}

// pump delivers direction dir's packets as they arrive, sleeping until
// the earliest one in flight or until a new packet is sent.
func (r *Relay) pump(dir int) {
	defer r.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var cs []*client
	for {
		r.mu.Lock()
		cs = append(cs[:0], r.list...)
		r.mu.Unlock()
		now := time.Now()
		var next time.Time
		for _, c := range cs {
			l := c.links[dir]
			l.Deliver(now, c.out[dir])
			if t, ok := l.Next(); ok && (next.IsZero() || t.Before(next)) {
				next = t
			}
		}
		if next.IsZero() {
			timer.Stop()
		} else {
			timer.Reset(time.Until(next))
		}
		select {
		case <-r.done:
			return
		case <-r.wake[dir]:
		case <-timer.C:
		}
	}
}
