package mmsg

import (
	"errors"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Counters receive what a Flush did, for the transports' Prometheus
// collectors.
type Counters interface {
	// Flushed says how many datagrams the kernel took, in how many
	// sendmmsg calls, and how many it refused (each skipped, the rest
	// sent).
	Flushed(sent, syscalls, failed int)
}

// Addr is a destination prepared for sendmmsg: its sockaddr, for IPv4 and
// for IPv6 sockets (an IPv4 address mapped), built once per participant so
// that queueing a datagram converts nothing.
type Addr struct {
	v4 unix.RawSockaddrInet4 // first: what a send reads, in the line it starts in
	v6 unix.RawSockaddrInet6
	ap netip.AddrPort
}

// SendBytes is how much of an Addr, from its start, a send reads: its
// sockaddrs, for prefetching.
const SendBytes = int(unsafe.Offsetof(Addr{}.ap))

// NewAddr prepares ap.
func NewAddr(ap netip.AddrPort) *Addr {
	a := &Addr{}
	a.Set(ap)
	return a
}

// Set prepares ap in a, for callers that keep Addrs to reuse.
func (a *Addr) Set(ap netip.AddrPort) {
	ip := ap.Addr()
	a.ap = ap
	a.v4 = unix.RawSockaddrInet4{Family: unix.AF_INET}
	a.v6 = unix.RawSockaddrInet6{Family: unix.AF_INET6}
	port := (*[2]byte)(unsafe.Pointer(&a.v4.Port))
	port[0], port[1] = byte(ap.Port()>>8), byte(ap.Port())
	a.v6.Port = a.v4.Port
	if ip.Is4() || ip.Is4In6() {
		a.v4.Addr = ip.Unmap().As4()
	}
	a.v6.Addr = ip.As16() // As16 maps an IPv4 address
}

// AddrPort is the address.
func (a *Addr) AddrPort() netip.AddrPort { return a.ap }

// Queue is a batch of datagrams waiting for Flush. It is not safe for
// concurrent use; the transports guard theirs.
type Queue struct {
	fd    int             // NewFDQueue's descriptor; -1 otherwise
	raw   syscall.RawConn // NewQueue's
	v6    bool            // the socket is AF_INET6
	msgs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // one per message; an IPv4 one in its first bytes
	per   int                     // buffers per message
	n     int

	// For raw.Write without a closure per call.
	write          func(fd uintptr) bool
	from, to, took int
	errno          syscall.Errno
}

// NewQueue makes a queue of up to size datagrams, each of up to per
// buffers (gathered by the kernel, header and payload apart), sent on
// conn's socket through Go's netpoller. A conn without a descriptor makes
// a queue whose every send fails, counted.
func NewQueue(conn syscall.Conn, size, per int) *Queue {
	q := newQueue(size, per)
	q.write = q.rawWrite
	raw, err := conn.SyscallConn()
	if err != nil {
		return q
	}
	_ = raw.Control(func(fd uintptr) {
		domain, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_DOMAIN)
		q.v6 = err == nil && domain == unix.AF_INET6
	})
	q.raw = raw
	return q
}

// NewFDQueue makes a queue sent on fd, a blocking socket outside Go's
// netpoller, of family AF_INET or AF_INET6: its sendmmsg is a plain system
// call, and queues on the same descriptor may send at once. The caller
// keeps fd open while the queue sends.
func NewFDQueue(fd, family, size, per int) *Queue {
	q := newQueue(size, per)
	q.fd, q.v6 = fd, family == unix.AF_INET6
	return q
}

func newQueue(size, per int) *Queue {
	q := &Queue{
		fd:    -1,
		msgs:  make([]unix.Mmsghdr, size),
		iovs:  make([]unix.Iovec, size*per),
		names: make([]unix.RawSockaddrInet6, size),
		per:   per,
	}
	for i := range q.msgs {
		q.msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&q.names[i]))
		q.msgs[i].Hdr.Iov = &q.iovs[i*per]
	}
	return q
}

// Len is how many datagrams wait.
func (q *Queue) Len() int { return q.n }

// Full reports whether Add must wait for a Flush.
func (q *Queue) Full() bool { return q.n == len(q.msgs) }

// Add queues one datagram to to, made of bufs (at most the queue's per
// buffers; the rest are ignored; empty ones are left out). The queue keeps
// bufs until Flush: they must not change until then. Add on a full queue
// does nothing and returns false.
func (q *Queue) Add(to *Addr, bufs ...[]byte) bool {
	if q.n == len(q.msgs) {
		return false
	}
	i := q.n
	m := &q.msgs[i]
	if q.v6 {
		q.names[i] = to.v6
		m.Hdr.Namelen = unix.SizeofSockaddrInet6
	} else {
		*(*unix.RawSockaddrInet4)(unsafe.Pointer(&q.names[i])) = to.v4
		m.Hdr.Namelen = unix.SizeofSockaddrInet4
	}
	iov := q.iovs[i*q.per : i*q.per+q.per]
	k := 0
	for _, b := range bufs {
		if k == len(iov) {
			break
		}
		if len(b) == 0 {
			continue
		}
		iov[k].Base = &b[0]
		iov[k].SetLen(len(b))
		k++
	}
	m.Hdr.SetIovlen(k)
	q.n++
	return true
}

// Flush sends what the queue holds, skipping each datagram the kernel
// refuses, tells c (when not nil) what it did, and empties the queue,
// letting go of the buffers it held.
func (q *Queue) Flush(c Counters) {
	syscalls, failed := 0, 0
	for sent := 0; sent < q.n; {
		k, err := q.send(sent, q.n)
		syscalls++
		if k > 0 {
			sent += k
		}
		if err != nil {
			// The message at sent failed: count it and go on with the rest.
			failed++
			sent++
		}
	}
	if c != nil && q.n > 0 {
		c.Flushed(q.n-failed, syscalls, failed)
	}
	clear(q.iovs[:q.n*q.per])
	q.n = 0
}

// errClosed: the socket is closed, or there is none.
var errClosed = errors.New("mmsg: socket closed")

// send makes one sendmmsg call of messages from to to.
func (q *Queue) send(from, to int) (int, error) {
	if q.raw == nil {
		if q.fd < 0 {
			return 0, errClosed
		}
		return sendmmsg(q.fd, q.msgs[from:to])
	}
	q.from, q.to, q.took, q.errno = from, to, 0, 0
	if err := q.raw.Write(q.write); err != nil {
		return 0, errClosed
	}
	if q.errno != 0 {
		return 0, q.errno
	}
	return q.took, nil
}

// rawWrite is raw.Write's function: false asks the netpoller to wait until
// the socket can take more.
func (q *Queue) rawWrite(fd uintptr) bool {
	n, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&q.msgs[q.from])), uintptr(q.to-q.from), 0, 0, 0)
	if errno == unix.EAGAIN {
		return false
	}
	q.took, q.errno = int(n), errno
	return true
}

// SendTo sends one datagram, pkt, to a prepared destination now, on fd, a
// blocking socket outside Go's netpoller of family AF_INET or AF_INET6
// (v6): as sendmmsg does, first without waiting, as a raw system call, and
// only when the socket's buffer is full in an ordinary one. Nothing is
// converted or allocated.
func SendTo(fd int, v6 bool, to *Addr, pkt []byte) error {
	if len(pkt) == 0 {
		return nil
	}
	name, size := unsafe.Pointer(&to.v4), uintptr(unix.SizeofSockaddrInet4)
	if v6 {
		name, size = unsafe.Pointer(&to.v6), unix.SizeofSockaddrInet6
	}
	p, n := uintptr(unsafe.Pointer(&pkt[0])), uintptr(len(pkt))
	_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), p, n, unix.MSG_DONTWAIT, uintptr(name), size)
	if errno == unix.EAGAIN {
		_, _, errno = unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), p, n, 0, uintptr(name), size)
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// sendmmsg sends msgs on a blocking socket. It first tries without
// blocking, as a raw system call the Go runtime does not see: a syscall it
// sees that lasts over 20 µs (a chunk of datagrams takes hundreds) makes
// its monitor thread take the P back, hand it to another thread and wake
// every 20 µs while it lasts, which cost a few percent of a core at a few
// thousand listeners. Only when the socket's buffer is full does it wait,
// in an ordinary system call.
func sendmmsg(fd int, msgs []unix.Mmsghdr) (int, error) {
	p, n := uintptr(unsafe.Pointer(&msgs[0])), uintptr(len(msgs))
	r, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, uintptr(fd), p, n, unix.MSG_DONTWAIT, 0, 0)
	if errno == unix.EAGAIN {
		r, _, errno = unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), p, n, 0, 0, 0)
	}
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}
