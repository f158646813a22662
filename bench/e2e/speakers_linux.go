package e2e

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handsup-audio/handsup/bench/internal/sim"
	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"golang.org/x/sys/unix"
)

// speakers are the rooms' speakers, in the parent: each plays a
// speech-like voice (bench/signal), or silence encoded with DTX, sent as
// WebRTC clients send it (bench/internal/sim: a packet every 400 ms),
// pre-encoded, as Opus/RTP from a socket of its own every 20 ms to the
// server, while one is set. What the server sends them back (every
// speaker's mix-minus, up to 50 packets a second each) is read and dropped
// once a tick, after the sends, from sockets outside Go's netpoller: a
// goroutine parked in Read per socket cost the client a wake-up per
// datagram (15,000 a second for 100 rooms of 3 speakers), about a fifth
// of a core.
type speakers struct {
	fds     []int
	streams []sim.Stream // per speaker, a loop of encoded frames
	to      atomic.Pointer[netip.AddrPort]
	stop    chan struct{}
	done    sync.WaitGroup
}

const speakerLoop = 250 // frames: 5 s of each voice, looped

func newSpeakers(rooms, perRoom, talking int) (*speakers, error) {
	s := &speakers{stop: make(chan struct{})}
	for k := range rooms * perRoom {
		fd, _, err := udpSocket([4]byte{127, 0, 0, 1}, 0, speakerSocketBuf)
		if err != nil {
			s.close()
			return nil, err
		}
		s.fds = append(s.fds, fd)
		var voice *signal.Voice
		if k%perRoom < talking {
			voice = signal.NewVoice(uint64(k + 1))
		}
		st, err := sim.EncodeStream(voice, speakerLoop)
		if err != nil {
			s.close()
			return nil, err
		}
		s.streams = append(s.streams, st)
	}
	s.done.Add(1)
	go s.run()
	return s, nil
}

// addrs are the speakers' addresses, for the server to declare.
func (s *speakers) addrs() []string {
	out := make([]string, len(s.fds))
	for i, fd := range s.fds {
		sa, err := unix.Getsockname(fd)
		if in4, ok := sa.(*unix.SockaddrInet4); err == nil && ok {
			out[i] = netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port)).String()
		}
	}
	return out
}

// sendTo starts sending to a server; the zero value stops.
func (s *speakers) sendTo(a netip.AddrPort) {
	if !a.IsValid() {
		s.to.Store(nil)
		return
	}
	s.to.Store(&a)
}

func (s *speakers) run() {
	defer s.done.Done()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	drain := newDrain()
	senders := make([]sim.Sender, len(s.streams))
	for i := range senders {
		senders[i] = sim.NewSender(&s.streams[i], uint32(1000+i), 0, 0)
	}
	buf := make([]byte, 12+codec.MaxPacketBytes)
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if to := s.to.Load(); to != nil {
			dst := &unix.SockaddrInet4{Addr: to.Addr().As4(), Port: int(to.Port())}
			for i, fd := range s.fds {
				if pkt := senders[i].Next(buf); pkt != nil {
					_ = unix.Sendto(fd, pkt, unix.MSG_DONTWAIT, dst)
				}
			}
		}
		for _, fd := range s.fds {
			drain.all(fd)
		}
	}
}

// speakerSocketBuf is each speaker socket's buffers: what the server sends
// it back between two drains is a tick's packet and now and then a sender
// report; this holds a second of it, for a tick the client runs late.
const speakerSocketBuf = 256 << 10

// drain reads sockets' waiting datagrams and drops them.
type drain struct {
	msgs []unix.Mmsghdr
}

func newDrain() *drain {
	const batch = 32
	d := &drain{msgs: make([]unix.Mmsghdr, batch)}
	buf := make([]byte, batch*rxBufBytes)
	iov := make([]unix.Iovec, batch)
	for i := range d.msgs {
		iov[i].Base = &buf[i*rxBufBytes]
		iov[i].SetLen(rxBufBytes)
		d.msgs[i].Hdr.Iov = &iov[i]
		d.msgs[i].Hdr.SetIovlen(1)
	}
	return d
}

// all reads fd until nothing waits.
func (d *drain) all(fd int) {
	for {
		n, err := recvmmsg(fd, d.msgs)
		if err != nil || n < len(d.msgs) {
			return
		}
	}
}

func (s *speakers) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.done.Wait()
	for _, fd := range s.fds {
		_ = unix.Close(fd)
	}
}
