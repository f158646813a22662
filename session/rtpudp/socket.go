package rtpudp

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/handsup-audio/handsup/session/internal/mmsg"
	"golang.org/x/sys/unix"
)

// socket is the RTP socket: a blocking descriptor outside Go's netpoller.
// The rooms' batches send with sendmmsg straight from their goroutines,
// several at once. In the netpoller every datagram sent woke the poller
// (the kernel signals the socket writable again as each leaves, and the
// runtime watches it for the reader's sake): a quarter of a large room's
// CPU went to threads woken for nothing.
//
// Its reader waits in the netpoller all the same, but on an epoll
// descriptor of its own (ep) that watches the socket for input only: the
// socket's write-space wake-ups stop there, and the runtime sees only
// arrivals. It reads with recvmmsg without waiting, a system call the
// runtime does not see. A reader blocked in recvmmsg on a thread of its
// own, as it was, cost as much again: the runtime took the P of a thread
// in a system call for over 10 ms back, and each return woke its monitor
// thread from its deep sleep to poll every 20 µs for a millisecond, about
// 8% of a core whatever the room's size.
type socket struct {
	fd     int
	family int // AF_INET or AF_INET6
	local  netip.AddrPort
	ep     *os.File        // the epoll descriptor watching fd for input, in Go's netpoller
	epConn syscall.RawConn // ep's
	rx     *reader

	muteMu sync.Mutex
	muted  int              // senders that have taken fd out of ep (muteInput)
	epCtl  func(ep uintptr) // newEpCtl's

	// mu is held shared by every system call on fd, exclusively by close,
	// so that fd is never used after it is closed (and its number given
	// to another file).
	mu     sync.RWMutex
	closed atomic.Bool
}

// openSocket binds a UDP socket to ap with buffers of buf bytes.
func openSocket(ap netip.AddrPort, buf int) (*socket, error) {
	ip := ap.Addr()
	family := unix.AF_INET6
	if ip.Is4() {
		family = unix.AF_INET
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("rtpudp: socket: %w", err)
	}
	s := &socket{fd: fd, family: family, rx: newReader()}
	if family == unix.AF_INET6 {
		// Dual stack on the unspecified address, as Go's net package does.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, boolInt(!ip.IsUnspecified()))
	}
	// Best effort: the kernel caps these at its own limits.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, buf)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, buf)
	setDontFragment(fd, family)
	if err := unix.Bind(fd, sockaddr(ap, family)); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("rtpudp: listen %s: %w", ap, err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("rtpudp: listen %s: %w", ap, err)
	}
	s.local = addrPort(sa)
	if err := s.watch(); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("rtpudp: listen %s: %w", ap, err)
	}
	return s, nil
}

// watch makes the epoll descriptor that tells the reader the socket has
// input, and puts it in Go's netpoller.
func (s *socket) watch() error {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return fmt.Errorf("epoll: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(s.fd)}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
		_ = unix.Close(ep)
		return fmt.Errorf("epoll: %w", err)
	}
	if err := unix.SetNonblock(ep, true); err != nil { // os.NewFile polls only non-blocking descriptors
		_ = unix.Close(ep)
		return fmt.Errorf("epoll: %w", err)
	}
	s.ep = os.NewFile(uintptr(ep), "rtpudp-epoll")
	s.epCtl = s.newEpCtl()
	if s.epConn, err = s.ep.SyscallConn(); err != nil {
		_ = s.ep.Close()
		return fmt.Errorf("epoll: %w", err)
	}
	return nil
}

// setDontFragment sets the don't-fragment bit on what fd sends, ignoring
// the path MTU the kernel learns (IP_PMTUDISC_PROBE: a datagram too long
// for the interface fails, counted, rather than leaving in fragments).
// Audio datagrams are a few hundred bytes and the engine keeps RED within
// 1,200, under the smallest MTUs on the way. It spares the kernel the IP
// identifier it draws for each datagram that may be fragmented: about 1
// point of 30 of a 3,200-listener server's CPU (docs/performance.md).
// Best effort: without it the socket works as before.
func setDontFragment(fd, family int) {
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
	if family == unix.AF_INET6 {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sockaddr is ap for a socket of family.
func sockaddr(ap netip.AddrPort, family int) unix.Sockaddr {
	if family == unix.AF_INET {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func addrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}

var errSocketClosed = errors.New("rtpudp: socket closed")

// sendTo sends one datagram now to a prepared destination.
func (s *socket) sendTo(pkt []byte, to *mmsg.Addr) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return errSocketClosed
	}
	return mmsg.SendTo(s.fd, s.family == unix.AF_INET6, to, pkt)
}

// muteInput takes the socket out of the reader's epoll descriptor while a
// large batch leaves, and unmuteInput puts it back once the last sender
// is done. The kernel signals a socket writable as each datagram leaves,
// walking its wait queue when anything waits there: the epoll entry is
// such a waiter, and the walk was 2.4% of a 3,200-listener server's
// samples (docs/performance.md). Input that comes while muted is not lost:
// putting the socket back reports it at once, and Drain reads the socket
// itself.
func (s *socket) muteInput() { s.setMuted(+1) }

func (s *socket) unmuteInput() { s.setMuted(-1) }

func (s *socket) setMuted(d int) {
	s.muteMu.Lock()
	defer s.muteMu.Unlock()
	was := s.muted
	s.muted += d
	if (was == 0) != (s.muted == 0) {
		_ = s.epConn.Control(s.epCtl) // ep stays open meanwhile
	}
}

// epCtl takes fd out of ep or puts it back, as muted says; made once, so
// that muting allocates nothing.
func (s *socket) newEpCtl() func(ep uintptr) {
	return func(ep uintptr) {
		s.mu.RLock()
		defer s.mu.RUnlock()
		if s.closed.Load() {
			return
		}
		if s.muted > 0 {
			_ = unix.EpollCtl(int(ep), unix.EPOLL_CTL_DEL, s.fd, nil)
			return
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(s.fd)}
		_ = unix.EpollCtl(int(ep), unix.EPOLL_CTL_ADD, s.fd, &ev)
	}
}

// use runs fn with fd open, or returns false if the socket is closed.
func (s *socket) use(fn func(fd, family int)) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return false
	}
	fn(s.fd, s.family)
	return true
}

// buffers is what the kernel granted the socket's buffers.
func (s *socket) buffers() (send, recv int) {
	s.use(func(fd, _ int) {
		send, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
		recv, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	return send, recv
}

// close wakes the reader, waits for every call on fd to end, and closes
// it.
func (s *socket) close() {
	if s.closed.Swap(true) {
		return
	}
	_ = s.ep.Close() // wakes the reader
	s.mu.Lock()
	_ = unix.Close(s.fd)
	s.mu.Unlock()
}

// readBatch is how many datagrams one recvmmsg takes; readSize the
// longest datagram kept whole.
const (
	readBatch = 32
	readSize  = 2048
)

// reader is what recvmmsg fills. The goroutine waiting for input (read)
// and Drain take turns with it.
type reader struct {
	mu    sync.Mutex
	msgs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	bufs  []byte
}

func newReader() *reader {
	r := &reader{
		msgs:  make([]unix.Mmsghdr, readBatch),
		iovs:  make([]unix.Iovec, readBatch),
		names: make([]unix.RawSockaddrInet6, readBatch),
		bufs:  make([]byte, readBatch*readSize),
	}
	for i := range r.msgs {
		r.iovs[i].Base = &r.bufs[i*readSize]
		r.iovs[i].SetLen(readSize)
		r.msgs[i].Hdr.Iov = &r.iovs[i]
		r.msgs[i].Hdr.SetIovlen(1)
		r.msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
	}
	return r
}

// recv reads up to readBatch datagrams from fd without waiting: a raw
// system call, which the runtime does not see.
func (r *reader) recv(fd int) (int, unix.Errno) {
	for i := range r.msgs {
		r.msgs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
	}
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&r.msgs[0])), readBatch, unix.MSG_DONTWAIT, 0, 0)
	return int(n), errno
}

// drain reads what the socket holds, without waiting, and hands each
// datagram to fn; errors counts failed calls. It reports whether the
// socket is closed.
func (s *socket) drain(fn func(pkt []byte, from netip.AddrPort), errors *atomic.Uint64) (closed bool) {
	r := s.rx
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var n int
		var errno unix.Errno
		if !s.use(func(fd, _ int) { n, errno = r.recv(fd) }) {
			return true
		}
		switch errno {
		case 0:
		case unix.EAGAIN:
			return false
		case unix.EINTR:
			continue
		default: // counted; the next arrival tries again, rather than spin on an error that stays
			errors.Add(1)
			return false
		}
		for i := range n {
			fn(r.bufs[i*readSize:i*readSize+min(int(r.msgs[i].Len), readSize)], rawAddrPort(&r.names[i]))
		}
	}
}

// read receives datagrams until the socket closes and hands each to fn, as
// drain does. It waits in Go's netpoller for the socket's epoll
// descriptor, and drains the socket each time it has input.
func (s *socket) read(fn func(pkt []byte, from netip.AddrPort), errors *atomic.Uint64) {
	wait := func(uintptr) bool { return s.drain(fn, errors) }
	for !s.closed.Load() {
		if err := s.epConn.Read(wait); err != nil {
			return // ep closed
		}
	}
}

// rawAddrPort reads a sockaddr the kernel wrote.
func rawAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	port := (*[2]byte)(unsafe.Pointer(&sa.Port))
	p := uint16(port[0])<<8 | uint16(port[1])
	if sa.Family == unix.AF_INET {
		v4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(v4.Addr), p)
	}
	return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), p)
}
