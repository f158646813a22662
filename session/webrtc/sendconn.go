package webrtc

import (
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/handsup-audio/handsup/session/internal/mmsg"
)

// Sizes of a send batch: datagrams, and the bytes they are copied into.
// An SRTP-protected Opus packet is about 100 bytes, so a batch holds up to
// batchSize of them; a larger one ends a batch early.
const (
	batchSize  = 512
	batchBytes = batchSize * 256
)

// sendConn is the socket under the ICE UDP mux. Its SRTP media (RTP by
// RFC 7983's first byte, not RTCP by RFC 5761's payload type) does not go
// out one sendto(2) at a time: pion's write path ends here having
// protected the packet into its own pooled buffer, so the datagram is
// copied into a batch, and Flush sends the batch with sendmmsg(2). STUN,
// DTLS and SRTCP go out at once.
//
// Batches are swapped out under the lock and sent outside it, so rooms
// ticking on other workers keep queueing while one flushes.
type sendConn struct {
	*net.UDPConn
	stats *counters

	mu   sync.Mutex
	fill *sendBatch   // the batch packets go into
	free []*sendBatch // sent batches, ready for reuse
}

// sendBatch is one batch: its queue, the bytes its datagrams were copied
// into, and an address per datagram (reused, so that queueing allocates
// nothing).
type sendBatch struct {
	q     *mmsg.Queue
	data  []byte
	addrs []mmsg.Addr
	// pending counts datagrams reserved and not yet written: send waits
	// for none before the batch goes out.
	pending atomic.Int32
}

func newSendConn(c *net.UDPConn, stats *counters) *sendConn {
	s := &sendConn{UDPConn: c, stats: stats}
	s.fill = s.newBatch()
	return s
}

func (s *sendConn) newBatch() *sendBatch {
	return &sendBatch{
		q:     mmsg.NewQueue(s.UDPConn, batchSize, 1),
		data:  make([]byte, 0, batchBytes),
		addrs: make([]mmsg.Addr, batchSize),
	}
}

// isRTP tells SRTP media from everything else on the socket: RFC 7983
// gives 128–191 as the first byte of RTP and RTCP, and RFC 5761 RTCP's
// packet types 192–223 as the second.
func isRTP(b []byte) bool {
	return len(b) >= 12 && b[0]>>6 == 2 && (b[1] < 192 || b[1] > 223)
}

// WriteToAddrPort queues SRTP media and sends the rest at once. The ICE
// mux writes through it (it prefers netip addresses, which allocate
// nothing).
func (s *sendConn) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	if !isRTP(b) {
		return s.UDPConn.WriteToUDPAddrPort(b, to)
	}
	batch, buf := s.reserve(len(b), to)
	copy(buf, b)
	batch.done()
	return len(b), nil
}

// reserve takes room for one datagram of n bytes to to in the batch being
// filled, for the caller to write into buf outside the lock (a peer's SRTP
// protection) and hand back with done: the batch does not go out before.
func (s *sendConn) reserve(n int, to netip.AddrPort) (b *sendBatch, buf []byte) {
	s.mu.Lock()
	if !s.fill.fits(n) {
		full := s.swapLocked()
		s.mu.Unlock()
		s.send(full)
		s.mu.Lock()
	}
	b = s.fill
	_, buf = b.add(n, to)
	b.pending.Add(1)
	s.mu.Unlock()
	return b, buf
}

// done says a reserved datagram is written.
func (b *sendBatch) done() { b.pending.Add(-1) }

// ReadFromAddrPort reads one datagram; with WriteToAddrPort it puts the
// ICE mux on its allocation-free path (ice.AddrPortReaderWriter).
func (s *sendConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return s.UDPConn.ReadFromUDPAddrPort(b)
}

// WriteTo is WriteToAddrPort for callers with a net.Addr.
func (s *sendConn) WriteTo(b []byte, to net.Addr) (int, error) {
	if ua, ok := to.(*net.UDPAddr); ok {
		return s.WriteToAddrPort(b, ua.AddrPort())
	}
	return s.UDPConn.WriteTo(b, to)
}

// Flush sends the media queued so far.
func (s *sendConn) Flush() {
	s.mu.Lock()
	if s.fill.q.Len() == 0 {
		s.mu.Unlock()
		return
	}
	full := s.swapLocked()
	s.mu.Unlock()
	s.send(full)
}

// swapLocked takes the batch being filled and puts an empty one in its
// place.
func (s *sendConn) swapLocked() *sendBatch {
	full := s.fill
	if n := len(s.free); n > 0 {
		s.fill, s.free = s.free[n-1], s.free[:n-1]
	} else {
		s.fill = s.newBatch()
	}
	return full
}

// send sends a batch taken out by swapLocked and keeps it for reuse.
func (s *sendConn) send(b *sendBatch) {
	for b.pending.Load() != 0 { // a peer is writing its reserved datagram
		runtime.Gosched()
	}
	b.q.Flush(s.stats)
	b.data = b.data[:0]
	s.mu.Lock()
	s.free = append(s.free, b)
	s.mu.Unlock()
}

// fits reports whether one more datagram of n bytes fits.
func (b *sendBatch) fits(n int) bool {
	return !b.q.Full() && len(b.data)+n <= cap(b.data)
}

// add queues one datagram of n bytes and returns its index and where its
// bytes go; it must fit.
func (b *sendBatch) add(n int, to netip.AddrPort) (i int, buf []byte) {
	i = b.q.Len()
	at := len(b.data)
	b.data = b.data[:at+n]
	a := &b.addrs[i]
	a.Set(to)
	buf = b.data[at : at+n : at+n]
	b.q.Add(a, buf)
	return i, buf
}
