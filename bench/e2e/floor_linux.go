package e2e

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// floor is the bare sender: what the kernel costs. Every 20 ms it sends
// each listener one datagram of the size handsup sends (an RTP header of
// the listener's own and a shared payload), with sendmmsg from one
// blocking socket to sockaddrs built once, up to 1024 a call: no
// engine, no locks, no allocation, no per-message conversion. Its socket
// sets the don't-fragment bit, as the server's does.
type floor struct {
	fd   int
	stop chan struct{}
	done sync.WaitGroup
	log  *tickLog

	sent, errors, calls, bytes, ticks atomic.Uint64
	overruns, skipped                 atomic.Uint64
	reader                            net.PacketConn // Config.FloorReader's parked reader, on the same socket
}

const floorBatch = 1024 // UIO_MAXIOV: the most a sendmmsg call takes

func startFloor(cfg childConfig, say func(report)) (sender, error) {
	fd, _, err := udpSocket([4]byte{127, 0, 0, 1}, 0, 4<<20)
	if err != nil {
		return nil, err
	}
	if !cfg.Fragment {
		// As session/rtpudp's socket: the don't-fragment bit, path MTU
		// ignored, so the kernel draws no IP identifier per datagram.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
	}
	f := &floor{fd: fd, stop: make(chan struct{}), log: newTickLog()}
	if cfg.Reader {
		// The same socket, also in Go's netpoller, with a goroutine
		// parked reading it, as a server's receive loop is.
		if f.reader, err = floorReader(fd); err != nil {
			_ = unix.Close(fd)
			return nil, err
		}
	}
	n := cfg.Listeners
	names := make([]unix.RawSockaddrInet4, n)
	headers := make([][12]byte, n)
	seq := make([]uint16, n)
	ts := make([]uint32, n)
	for i := range n {
		a := listenerAddr(i, cfg.Ports)
		names[i] = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.Addr().As4()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&names[i].Port))[:], a.Port())
		seq[i], ts[i] = uint16(i*7919), uint32(i*104729)
	}
	payload := make([]byte, max(1, cfg.Datagram-12))
	msgs := make([]unix.Mmsghdr, n)
	iovs := make([]unix.Iovec, 2*n)
	for i := range msgs {
		iovs[2*i].Base, iovs[2*i+1].Base = &headers[i][0], &payload[0]
		iovs[2*i].SetLen(12)
		iovs[2*i+1].SetLen(len(payload))
		msgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&names[i]))
		msgs[i].Hdr.Namelen = unix.SizeofSockaddrInet4
		msgs[i].Hdr.Iov = &iovs[2*i]
		msgs[i].Hdr.SetIovlen(2)
	}
	say(report{Event: "ready"})
	say(report{Event: "joined", Joins: &Joins{Count: n}})
	f.done.Add(1)
	go func() {
		defer f.done.Done()
		next := time.Now()
		for {
			select {
			case <-f.stop:
				return
			default:
			}
			start := time.Now()
			for i := range n {
				h := &headers[i]
				h[0], h[1] = 0x80, 111
				binary.BigEndian.PutUint16(h[2:], seq[i])
				binary.BigEndian.PutUint32(h[4:], ts[i])
				binary.BigEndian.PutUint32(h[8:], uint32(i)|1)
				seq[i]++
				ts[i] += 960
			}
			f.send(msgs, 12+len(payload))
			f.ticks.Add(1)
			f.log.add(start, time.Since(start))
			next = next.Add(20 * time.Millisecond)
			if behind := time.Since(next); behind > 100*time.Millisecond { // as engine.Run: skip, counted
				missed := behind / (20 * time.Millisecond)
				next = next.Add(missed * 20 * time.Millisecond)
				f.skipped.Add(uint64(missed))
			} else if behind > 0 {
				f.overruns.Add(1)
			}
			time.Sleep(time.Until(next))
		}
	}()
	return f, nil
}

// send sends msgs, skipping each one the kernel refuses.
func (f *floor) send(msgs []unix.Mmsghdr, size int) {
	for sent := 0; sent < len(msgs); {
		k, err := sendmmsg(f.fd, msgs[sent:min(len(msgs), sent+floorBatch)])
		f.calls.Add(1)
		if k > 0 {
			sent += k
			f.sent.Add(uint64(k))
			f.bytes.Add(uint64(k * size))
		}
		if err != nil {
			f.errors.Add(1)
			sent++
		}
	}
}

func (f *floor) mark() report {
	r := report{Ticks: f.ticks.Load(), Overruns: f.overruns.Load(), Skipped: f.skipped.Load(), Sent: f.sent.Load(), SendErrors: f.errors.Load(), Calls: f.calls.Load(), Bytes: f.bytes.Load(),
		SndBuf: granted(f.fd, unix.SO_SNDBUF), RcvBuf: granted(f.fd, unix.SO_RCVBUF)}
	f.log.fill(&r)
	return r
}

func (f *floor) close() {
	close(f.stop)
	f.done.Wait()
	if f.reader != nil {
		_ = f.reader.Close()
	}
	_ = unix.Close(f.fd)
}

// floorReader puts a duplicate of fd in Go's netpoller and parks a
// goroutine reading it.
func floorReader(fd int) (net.PacketConn, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	file := osFile(dup)
	defer file.Close()
	c, err := net.FilePacketConn(file)
	if err != nil {
		return nil, err
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := c.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return c, nil
}
