package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"time"

	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/session"
	"github.com/handsup-audio/handsup/session/rtpudp"
)

// server is the handsup side: an engine, a session manager and one
// rtpudp transport, wired as cmd/handsup wires them (a send batch per
// room flushed after its tick, the manager's sender reports and sweeps),
// one room whose speakers are the parent's and whose listeners are the
// receivers' addresses.
type server struct {
	cancel   context.CancelFunc
	eng      *engine.Engine
	sessions *session.Manager
	udp      *rtpudp.Transport
	ticks    *tickLog
}

func startServer(cfg childConfig, say func(report)) (sender, error) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	udp, err := rtpudp.Listen(rtpudp.Config{Addr: "127.0.0.1:0", Logger: quiet, ReadOnDrain: true})
	if err != nil {
		return nil, err
	}
	s := &server{udp: udp, ticks: newTickLog()}
	s.eng = engine.New(engine.Config{
		Workers:    cfg.Workers,
		Phases:     cfg.Phases,
		Shed:       engine.ShedConfig{Off: cfg.Shed < 0, Complexity: cfg.Shed},
		BeforeTick: udp.Drain, // as cmd/handsup's server
		OnTick:     s.ticks.addTick,
	})
	s.sessions = session.New(s.eng, session.Config{Logger: quiet})
	rooms, batches := make([]*session.Room, max(1, cfg.Rooms)), make([]*rtpudp.Batch, max(1, cfg.Rooms))
	for i := range rooms {
		// As the server's rooms: a batch each, DTX in silence. The
		// talkers' voices never pause long enough for DTX, so every
		// listener is owed a packet every tick, as from the floor; a
		// speaker's mix-minus that holds no voice (a lone talker's) goes
		// quiet, as on a real server, instead of encoding silence every
		// tick. The receivers' accounting holds either way: DTX gaps take
		// no sequence numbers.
		batches[i] = udp.NewBatch()
		if rooms[i], err = s.sessions.NewRoom(fmt.Sprint("e2e-", i), engine.RoomConfig{
			Send: batches[i].SendPart, AfterTick: batches[i].Flush, SendSplit: cfg.SendSplit,
		}); err != nil {
			_ = udp.Close()
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { _ = udp.Serve(ctx) }()
	go func() { _ = s.eng.Run(ctx) }()
	go func() { _ = s.sessions.Run(ctx) }()

	per := len(cfg.Speakers) / len(rooms)
	for i, a := range cfg.Speakers {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			s.close()
			return nil, err
		}
		r := min(i/max(1, per), len(rooms)-1)
		if err := s.join(rooms[r], fmt.Sprintf("speaker-%d", i), engine.Speaker, ap, batches[r]); err != nil {
			s.close()
			return nil, err
		}
	}
	say(report{Event: "ready", RTP: udp.LocalAddr().String()})

	all := cfg.Listeners * len(rooms)
	j := &Joins{Count: all}
	took := newHistogram(50*time.Microsecond, 40000)
	before := s.eng.Stats()
	start := time.Now()
	for i := range all {
		if cfg.JoinRate > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(float64(i) / cfg.JoinRate * float64(time.Second)))))
		}
		t0 := time.Now()
		r := i / cfg.Listeners
		if err := s.join(rooms[r], fmt.Sprintf("listener-%d", i), engine.Listener, listenerAddr(i, cfg.Ports), batches[r]); err != nil {
			s.close()
			return nil, err
		}
		took.add(time.Since(t0))
	}
	after := s.eng.Stats()
	j.Seconds = time.Since(start).Seconds()
	j.P50Ms, j.P99Ms, j.MaxMs = ms(took.quantile(0.5)), ms(took.quantile(0.99)), ms(took.max)
	j.Skipped, j.Overruns = after.Skipped-before.Skipped, after.Overruns-before.Overruns
	say(report{Event: "joined", Joins: j})
	return s, nil
}

// join adds one participant at addr, as the server's POST
// /v1/rooms/{room}/participants does: a peer of the transport, joined to
// the room.
func (s *server) join(room *session.Room, id string, role engine.Role, addr netip.AddrPort, batch *rtpudp.Batch) error {
	peer, err := s.udp.AddPeer(addr, netip.AddrPort{}, batch)
	if err != nil {
		return err
	}
	if _, err := room.Join(id, engine.ParticipantConfig{Role: role}, peer); err != nil {
		_ = peer.Close()
		return err
	}
	return nil
}

func (s *server) mark() report {
	st, us := s.eng.Stats(), s.udp.Stats()
	r := report{
		Ticks: st.Ticks, Overruns: st.Overruns, Skipped: st.Skipped, ShedTicks: st.ShedTicks, ShedSpells: st.ShedSpells,
		Sent: us.PacketsOut, SendErrors: us.SendErrors, Calls: us.SendSyscalls,
		Bytes: st.BytesOut, Decodes: st.Decodes, Encodes: st.Encodes,
		BuildNS: int64(st.BuildTime), EncodeNS: int64(st.EncodeTime), SendNS: int64(st.SendTime), RoomTicks: st.RoomTicks,
		SplitSends: st.SplitSends,
	}
	r.SndBuf, r.RcvBuf = s.udp.SocketBuffers()
	for _, room := range s.eng.Rooms() {
		j := room.Snapshot().Jitter
		r.Concealments += j.ConcealmentEvents
		r.Emitted += float64(j.JitterBufferEmittedCount)
		r.TargetS += j.JitterBufferTargetDelay
		r.DelayS += j.JitterBufferDelay
	}
	s.ticks.fill(&r)
	return r
}

func (s *server) close() {
	s.cancel()
	s.sessions.Close()
	s.eng.Close()
	_ = s.udp.Close()
}
