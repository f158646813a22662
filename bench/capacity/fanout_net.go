package capacity

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/internal/webrtctest"
	"github.com/handsup-audio/handsup/session/rtpudp"
	"github.com/handsup-audio/handsup/session/webrtc"
)

// countRoom is n listeners with a counting sink each: the engine's own
// cost, no network.
func countRoom(_ context.Context, n int) (*fanRoom, error) {
	sinks := make([]countSink, n)
	sent := func() uint64 {
		var s uint64
		for i := range sinks {
			s += sinks[i].packets
		}
		return s
	}
	return &fanRoom{
		listeners: listeners{
			join: func(i int) (engine.ParticipantConfig, error) {
				return engine.ParticipantConfig{Role: engine.Listener, Sink: &sinks[i]}, nil
			},
			sent: sent,
		},
		received: func(into []uint64) {
			for i := range sinks {
				into[i] = sinks[i].packets
			}
		},
		close: func() {},
	}, nil
}

// rtpRoom is n plain-RTP listeners: peers of one rtpudp.Transport of their
// own, each sending to a UDP socket on loopback that a goroutine reads and
// counts. The batch holds a whole tick (BatchSize ≥ n), so the tick's
// sendmmsg calls all happen in the flush.
func rtpRoom(_ context.Context, n int) (*fanRoom, error) {
	tr, err := rtpudp.Listen(rtpudp.Config{
		Addr: "127.0.0.1:0", BatchSize: max(256, n), NoRTCPPort: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, err
	}
	batch := tr.NewBatch()
	counts := make([]atomic.Uint64, n)
	conns := make([]*net.UDPConn, 0, n)
	peers := make([]*rtpudp.Peer, 0, n)
	f := &fanRoom{close: func() {
		_ = tr.Close()
		for _, c := range conns {
			_ = c.Close()
		}
	}}
	for i := range n {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			f.close()
			return nil, err
		}
		conns = append(conns, c)
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
					return
				}
				counts[i].Add(1)
			}
		}()
		addr := c.LocalAddr().(*net.UDPAddr).AddrPort()
		p, err := tr.AddPeer(addr, addr, batch)
		if err != nil {
			f.close()
			return nil, err
		}
		peers = append(peers, p)
	}
	f.listeners = listeners{
		join: func(i int) (engine.ParticipantConfig, error) {
			return engine.ParticipantConfig{Role: engine.Listener, Sink: peers[i]}, nil
		},
		flush: batch.Flush,
		sent:  func() uint64 { return tr.Stats().PacketsOut },
	}
	f.received = func(into []uint64) {
		for i := range counts {
			into[i] = counts[i].Load()
		}
	}
	return f, nil
}

// webrtcRoom is n WebRTC listeners: peers of one webrtc.Transport of their
// own, each answering a pion client on loopback (webrtctest, counting what
// it receives after SRTP). Clients connect a few at a time; 60 s bound a
// failure.
func webrtcRoom(ctx context.Context, n int) (*fanRoom, error) {
	tr, err := webrtc.Listen(webrtc.Config{UDPAddr: "127.0.0.1:0", LoggerFactory: webrtctest.Quiet})
	if err != nil {
		return nil, err
	}
	clients := make([]*webrtctest.Client, n)
	peers := make([]*webrtc.Peer, n)
	f := &fanRoom{close: func() {
		for i := range n {
			if peers[i] != nil {
				_ = peers[i].Close()
			}
			if clients[i] != nil {
				_ = clients[i].Close()
			}
		}
		_ = tr.Close()
	}}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	jobs := make(chan int)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				clients[i], peers[i], errs[i] = connectWebRTC(ctx, tr)
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		f.close()
		return nil, err
	}
	f.listeners = listeners{
		join: func(i int) (engine.ParticipantConfig, error) {
			cfg := engine.ParticipantConfig{Role: engine.Listener, Sink: peers[i]}
			peers[i].Configure(&cfg)
			return cfg, nil
		},
		flush: tr.Flush,
		sent:  func() uint64 { return tr.Stats().BatchedOut },
	}
	f.received = func(into []uint64) {
		for i, c := range clients {
			into[i] = uint64(c.Packets())
		}
	}
	f.authenticated = func() uint64 {
		var v uint64
		for _, c := range clients {
			v += uint64(c.Verified())
		}
		return v
	}
	return f, nil
}

// connectWebRTC runs one offer/answer between a new counting client and
// tr and waits for the connection.
func connectWebRTC(ctx context.Context, tr *webrtc.Transport) (*webrtctest.Client, *webrtc.Peer, error) {
	c, err := webrtctest.New(webrtctest.Options{CountOnly: true})
	if err != nil {
		return nil, nil, err
	}
	offer, err := c.Offer(ctx)
	if err != nil {
		return c, nil, err
	}
	p, answer, err := tr.Answer(ctx, offer)
	if err != nil {
		return c, nil, err
	}
	if err := c.Accept(answer); err != nil {
		return c, p, err
	}
	return c, p, c.WaitConnected(ctx)
}
