package e2e

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
)

// speakers are the rooms' speakers, in the parent: each plays a
// speech-like voice (bench/signal), or silence encoded with DTX (whose
// one-byte frames are not sent), pre-encoded, as Opus/RTP from a socket of
// its own every 20 ms to the server, while one is set.
type speakers struct {
	conns  []*net.UDPConn
	frames [][][]byte // per speaker, a loop of encoded frames
	to     atomic.Pointer[netip.AddrPort]
	stop   chan struct{}
	done   sync.WaitGroup
}

const speakerLoop = 250 // frames: 5 s of each voice, looped

func newSpeakers(rooms, perRoom, talking int) (*speakers, error) {
	s := &speakers{stop: make(chan struct{})}
	pcm := make([]int16, codec.FrameSamples)
	buf := make([]byte, codec.MaxPacketBytes)
	for k := range rooms * perRoom {
		talks := k%perRoom < talking
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			s.close()
			return nil, err
		}
		s.conns = append(s.conns, c)
		enc, err := codec.NewEncoder(codec.EncoderConfig{DTX: !talks})
		if err != nil {
			s.close()
			return nil, err
		}
		voice := signal.NewVoice(uint64(k + 1))
		var frames [][]byte
		for range speakerLoop {
			if talks {
				voice.Fill(pcm)
			}
			m, err := enc.Encode(pcm, buf)
			if err != nil {
				s.close()
				return nil, err
			}
			frames = append(frames, append(make([]byte, 12, 12+m), buf[:m]...))
		}
		s.frames = append(s.frames, frames)
		s.done.Add(1)
		go func() { // what the room sends the speaker back: read and dropped
			defer s.done.Done()
			b := make([]byte, 2048)
			for {
				if _, err := c.Read(b); err != nil {
					return
				}
			}
		}()
	}
	s.done.Add(1)
	go s.run()
	return s, nil
}

// addrs are the speakers' addresses, for the server to declare.
func (s *speakers) addrs() []string {
	out := make([]string, len(s.conns))
	for i, c := range s.conns {
		out[i] = c.LocalAddr().String()
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
	var seq uint16
	var ts uint32
	for k := 0; ; k++ {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		to := s.to.Load()
		if to == nil {
			continue
		}
		for i, c := range s.conns {
			pkt := s.frames[i][k%speakerLoop]
			if codec.IsDTX(pkt[12:]) {
				continue // not sent, as WebRTC clients do; the timestamp runs on
			}
			pkt[0], pkt[1] = 0x80, 111
			binary.BigEndian.PutUint16(pkt[2:], seq)
			binary.BigEndian.PutUint32(pkt[4:], ts)
			binary.BigEndian.PutUint32(pkt[8:], uint32(1000+i))
			_, _ = c.WriteToUDPAddrPort(pkt, *to)
		}
		seq++
		ts += codec.FrameSamples
	}
}

func (s *speakers) close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.done.Wait()
}
