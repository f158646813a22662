package mmsg

import (
	"net"

	"golang.org/x/net/ipv4"
)

// Counters receive what a Flush did, for the transports' Prometheus
// collectors.
type Counters interface {
	// Flushed says how many datagrams the kernel took, in how many
	// sendmmsg calls, and how many it refused (each skipped, the rest
	// sent).
	Flushed(sent, syscalls, failed int)
}

// writer is what ipv4.PacketConn and ipv6.PacketConn share: sendmmsg.
type writer interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// Queue is a batch of datagrams waiting for Flush. It is not safe for
// concurrent use; the transports guard theirs.
type Queue struct {
	w    writer
	msgs []ipv4.Message
	bufs [][]byte
	per  int // buffers per message
	n    int
}

// NewQueue makes a queue of up to size datagrams, each of up to per
// buffers (gathered by the kernel, header and payload apart), sent on
// conn.
func NewQueue(conn net.PacketConn, size, per int) *Queue {
	q := &Queue{
		w:    ipv4.NewPacketConn(conn), // sendmmsg works on v4 and v6 sockets alike
		msgs: make([]ipv4.Message, size),
		bufs: make([][]byte, size*per),
		per:  per,
	}
	for i := range q.msgs {
		q.msgs[i].Buffers = q.bufs[i*per : i*per+per]
	}
	return q
}

// Len is how many datagrams wait.
func (q *Queue) Len() int { return q.n }

// Full reports whether Add must wait for a Flush.
func (q *Queue) Full() bool { return q.n == len(q.msgs) }

// Add queues one datagram to to, made of bufs (at most the queue's per
// buffers; the rest are ignored). The queue keeps to and bufs until Flush:
// they must not change until then. Add on a full queue does nothing and
// returns false.
func (q *Queue) Add(to net.Addr, bufs ...[]byte) bool {
	if q.n == len(q.msgs) {
		return false
	}
	m := &q.msgs[q.n]
	k := copy(q.bufs[q.n*q.per:q.n*q.per+q.per], bufs)
	m.Buffers = q.bufs[q.n*q.per : q.n*q.per+k]
	m.Addr = to
	q.n++
	return true
}

// Flush sends what the queue holds, skipping each datagram the kernel
// refuses, tells c (when not nil) what it did, and empties the queue,
// letting go of the buffers and addresses it held.
func (q *Queue) Flush(c Counters) {
	syscalls, failed := 0, 0
	for sent := 0; sent < q.n; {
		k, err := q.w.WriteBatch(q.msgs[sent:q.n], 0)
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
	for i := range q.n {
		clear(q.msgs[i].Buffers)
		q.msgs[i].Addr = nil
	}
	q.n = 0
}
