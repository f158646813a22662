package e2e

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The client's receivers: a few sockets, each bound to one port on every
// local address, read with recvmmsg on a thread of its own, outside Go's
// netpoller. Listener i is the address 127.10.b.c on port ports[i %
// len(ports)]; IP_PKTINFO tells which address a datagram was sent to, so
// one socket counts the packets of thousands of listeners.

const (
	rxBatch     = 256 // datagrams per recvmmsg
	rxBufBytes  = 512 // an RTP packet of Opus, or an RTCP sender report
	rxOOBBytes  = 128 // IP_PKTINFO, SCM_TIMESTAMPNS, SO_RXQ_OVFL
	rxSocketBuf = 64 << 20
	histBucket  = 100 * time.Microsecond // inter-arrival histogram resolution
	histLen     = 20000                  // up to 2 s; longer gaps go in the last bucket
	addrsPerB   = 250                    // listeners per 127.10.b.0/24, c from 1 to 250
	rxPoll      = 2 * time.Millisecond   // between reads of an empty socket
)

// maxListeners is how many listeners the addressing scheme holds per port.
const maxListenersPerPort = addrsPerB * 250

// listenerAddr is where listener i receives: 127.10.b.c on one of ports.
func listenerAddr(i int, ports []int) netip.AddrPort {
	j := i / len(ports)
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 10, byte(j / addrsPerB), byte(1 + j%addrsPerB)}),
		uint16(ports[i%len(ports)]))
}

// listenerState is what one listener received in the window.
type listenerState struct {
	count       uint32
	first, last int64 // extended RTP sequence numbers
	lastArrival int64 // kernel receive time, ns
}

// rxSocket is one receiving socket and the listeners on its port.
type rxSocket struct {
	fd, port, index int
	k, n            int // sockets, listeners

	mu        sync.Mutex // guards what follows against Start and Stop
	measuring bool
	states    []listenerState // by address index j
	hist      *histogram      // inter-arrival times
	bytes     uint64          // RTP bytes received in the window
	rtcp      uint64          // RTCP packets received in the window
	stray     uint64          // datagrams to no listener, truncated or not RTP
	overflow  uint32          // SO_RXQ_OVFL: the socket's drops so far
	ovflStart uint32
}

// receivers are the client's sockets.
type receivers struct {
	socks []*rxSocket
	ports []int
	n     int // listeners
	done  sync.WaitGroup
	stop  chan struct{}
}

// errTooMany: the addressing scheme holds so many listeners per port.
var errTooMany = errors.New("e2e: too many listeners for the receivers' ports (127.10.0.0/16 holds 62,500 a port)")

// newReceivers opens k sockets for n listeners and starts reading them.
func newReceivers(k, n int) (*receivers, error) {
	if n > k*maxListenersPerPort {
		return nil, errTooMany
	}
	r := &receivers{n: n, stop: make(chan struct{})}
	for i := range k {
		// Bound to every local address, for the listeners' 127.10.b.c;
		// a datagram sent to any other address counts as stray.
		fd, port, err := udpSocket([4]byte{}, 0, rxSocketBuf)
		if err != nil {
			r.close()
			return nil, err
		}
		// Loopback only, where the kernel allows it (CAP_NET_RAW): the
		// socket takes what arrives on lo and nothing else.
		_ = unix.BindToDevice(fd, "lo")
		for _, opt := range [][2]int{{unix.IPPROTO_IP, unix.IP_PKTINFO}, {unix.SOL_SOCKET, unix.SO_TIMESTAMPNS}, {unix.SOL_SOCKET, unix.SO_RXQ_OVFL}} {
			if err := unix.SetsockoptInt(fd, opt[0], opt[1], 1); err != nil {
				_ = unix.Close(fd)
				r.close()
				return nil, err
			}
		}
		s := &rxSocket{fd: fd, port: port, index: i, k: k, n: n, states: make([]listenerState, n/k+1), hist: newHistogram(histBucket, histLen)}
		r.socks = append(r.socks, s)
		r.ports = append(r.ports, port)
	}
	for _, s := range r.socks {
		r.done.Add(1)
		go func() {
			defer r.done.Done()
			s.read(r.stop)
		}()
	}
	return r, nil
}

func (r *receivers) close() {
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	r.done.Wait()
	for _, s := range r.socks {
		_ = unix.Close(s.fd)
	}
}

// rcvbuf is what the kernel granted the receiving sockets.
func (r *receivers) rcvbuf() int { return granted(r.socks[0].fd, unix.SO_RCVBUF) }

// start opens a measurement window: every count starts from zero.
func (r *receivers) start() {
	for _, s := range r.socks {
		s.mu.Lock()
		clear(s.states)
		s.hist.reset()
		s.bytes, s.rtcp, s.stray = 0, 0, 0
		s.ovflStart = s.overflow
		s.measuring = true
		s.mu.Unlock()
	}
}

// window is what the receivers counted in a window.
type window struct {
	perListener  []listenerState // by listener index
	interArrival *histogram
	bytes        uint64
	rtcp, stray  uint64
	overflow     uint64 // datagrams the receiving sockets dropped (SO_RXQ_OVFL)
}

// end closes the window and returns the counts of listeners 0 to n-1.
func (r *receivers) end(n int) window {
	w := window{perListener: make([]listenerState, n), interArrival: newHistogram(histBucket, histLen)}
	k := len(r.socks)
	for _, s := range r.socks {
		s.mu.Lock()
		s.measuring = false
		for i := s.index; i < n; i += k {
			w.perListener[i] = s.states[i/k]
		}
		w.interArrival.merge(s.hist)
		w.bytes += s.bytes
		w.rtcp += s.rtcp
		w.stray += s.stray
		w.overflow += uint64(s.overflow - s.ovflStart)
		s.mu.Unlock()
	}
	return w
}

// read receives until stop.
func (s *rxSocket) read(stop <-chan struct{}) {
	msgs := make([]unix.Mmsghdr, rxBatch)
	iovs := make([]unix.Iovec, rxBatch)
	bufs := make([]byte, rxBatch*rxBufBytes)
	oob := make([]byte, rxBatch*rxOOBBytes)
	for i := range msgs {
		iovs[i].Base = &bufs[i*rxBufBytes]
		iovs[i].SetLen(rxBufBytes)
		msgs[i].Hdr.Iov = &iovs[i]
		msgs[i].Hdr.SetIovlen(1)
	}
	for {
		select {
		case <-stop:
			return
		default:
		}
		for i := range msgs {
			msgs[i].Hdr.Control = &oob[i*rxOOBBytes]
			msgs[i].Hdr.SetControllen(rxOOBBytes)
			msgs[i].Hdr.Flags = 0
		}
		n, err := recvmmsg(s.fd, msgs)
		if err != nil {
			// Nothing waiting: sleep rather than block, so that a tick's
			// burst is read in full batches, not a wake-up per datagram
			// (the kernel's timestamps keep the arrival times).
			time.Sleep(rxPoll)
			continue
		}
		s.mu.Lock()
		for i := range n {
			m := &msgs[i]
			s.take(bufs[i*rxBufBytes:i*rxBufBytes+int(m.Len)], oob[i*rxOOBBytes:i*rxOOBBytes+int(m.Hdr.Controllen)], m.Hdr.Flags)
		}
		s.mu.Unlock()
	}
}

// take counts one datagram.
func (s *rxSocket) take(pkt, oob []byte, flags int32) {
	dst, at, ok := s.control(oob)
	if !s.measuring {
		return
	}
	if !ok || flags&unix.MSG_TRUNC != 0 || len(pkt) < 12 || pkt[0]>>6 != 2 || dst[0] != 127 || dst[1] != 10 || dst[3] == 0 || int(dst[3]) > addrsPerB {
		s.stray++
		return
	}
	if pkt[1] >= 192 && pkt[1] <= 223 { // RTCP (RFC 5761)
		s.rtcp++
		return
	}
	j := int(dst[2])*addrsPerB + int(dst[3]) - 1
	if j*s.k+s.index >= s.n {
		s.stray++
		return
	}
	st := &s.states[j]
	seq := binary.BigEndian.Uint16(pkt[2:4])
	if st.count == 0 {
		st.first, st.last = int64(seq), int64(seq)
	} else {
		ext := st.last + int64(int16(seq-uint16(st.last)))
		st.last = max(st.last, ext)
		if at > 0 && st.lastArrival > 0 {
			s.hist.add(time.Duration(at - st.lastArrival))
		}
	}
	st.count++
	st.lastArrival = at
	s.bytes += uint64(len(pkt))
}

// control reads a datagram's control messages: the address it was sent
// to, when the kernel received it, and the socket's drop count.
func (s *rxSocket) control(oob []byte) (dst [4]byte, at int64, ok bool) {
	const hdr = int(unsafe.Sizeof(unix.Cmsghdr{}))
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			break
		}
		data := oob[hdr:l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= int(unsafe.Sizeof(unix.Inet4Pktinfo{})):
			dst = (*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0])).Addr
			ok = true
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SO_TIMESTAMPNS && len(data) >= int(unsafe.Sizeof(unix.Timespec{})):
			at = (*unix.Timespec)(unsafe.Pointer(&data[0])).Nano()
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && len(data) >= 4:
			s.overflow = binary.NativeEndian.Uint32(data)
		}
		oob = oob[min(len(oob), unix.CmsgSpace(l-hdr)):]
	}
	return dst, at, ok
}
