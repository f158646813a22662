package session

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/feedback"
)

// ErrLinkInUse is returned by Room.Join when the link already carries a
// member.
var ErrLinkInUse = errors.New("session: link already bound to a member")

// ReportPeriod is how often Manager.Run sends the sender reports that have
// come due: each time, the share of every room's streams due since then.
const ReportPeriod = 50 * time.Millisecond

// SweepPeriod is how often Manager.Run looks for idle members.
const SweepPeriod = time.Second

// ReasonTimeout is the reason a member removed for silence or by
// Member.Timeout leaves with (engine.Event.Reason): engine.ReasonTimeout.
const ReasonTimeout = engine.ReasonTimeout

// Config holds a Manager's settings. The zero value works: every zero
// field takes the default written beside it.
type Config struct {
	// SRInterval is how long the manager takes to send a sender report on
	// every output stream of a room once; default 5 s (10,000 listeners:
	// 40 reports per 20 ms).
	SRInterval time.Duration
	CNAME      string // the SDES CNAME of every output stream; default "handsup"
	// IdleTimeout removes a member that used to send RTP or RTCP and has
	// sent nothing for this long, with reason "timeout"; default 30 s,
	// negative: never. A member that never sent anything is kept: a
	// receive-only plain-RTP listener (ffmpeg or ffplay playing an SDP
	// file sends no RTCP at all) has no way to prove itself alive, and
	// removing it would silence a working client. Transports that see a
	// participant go (ICE consent failure) call Member.Timeout instead.
	IdleTimeout time.Duration
	// Flushers are transports shared by every room whose links queue
	// what a tick sends (webrtc.Transport): each room flushes them at the
	// end of each of its ticks, before its own engine.RoomConfig.AfterTick.
	// Default none.
	Flushers []Flusher
	Now      func() time.Time // stamps RTCP arrivals and reports; default time.Now
	Logger   *slog.Logger     // default slog.Default()
}

func (c Config) withDefaults() Config {
	if c.CNAME == "" {
		c.CNAME = "handsup"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 30 * time.Second
	}
	return c
}

// Manager runs participants of an engine's rooms over transports: it binds
// each participant to its Link, routes the RTCP it receives to the engine,
// runs the RTCP side of every speaker's incoming stream and sends sender
// reports on every output stream. Its methods are safe for concurrent use;
// there is no lock wider than one room.
type Manager struct {
	eng *engine.Engine
	cfg Config

	mu    sync.Mutex
	rooms map[string]*Room

	// reports is scratch for parsing RTCP, one per concurrent receiver
	// (transports may read on several goroutines).
	reports sync.Pool

	sweepMu   sync.Mutex                 // one Sweep at a time
	lastSweep time.Time                  // Run's
	swept     []*Member                  // Sweep's scratch: a room of 10,000 is not copied and sorted anew each second
	pollMu    sync.Mutex                 // one SendReports at a time
	polled    []*feedback.SpeakerSession // SendReports' scratch

	st counters
}

type counters struct {
	rtcpIn, rtcpMalformed, rtcpSent, rtcpSendErrors, nacksIn atomic.Uint64
	speakerSessionErrors, timedOut                           atomic.Uint64
}

// Stats counts a manager's RTCP traffic, over all rooms.
type Stats struct {
	RTCPReceived   uint64 // compound RTCP packets from members that parsed
	RTCPMalformed  uint64 // RTCP packets from members that did not parse, dropped
	RTCPSent       uint64 // RTCP packets sent: SRs, and RRs and NACKs to speakers
	RTCPSendErrors uint64 // RTCP packets a link failed to send
	NACKsReceived  uint64 // sequence numbers members NACKed on the streams sent to them
	// SpeakerSessionErrors counts speakers left without the RTCP side of
	// their incoming stream because it failed to start.
	SpeakerSessionErrors uint64
	// TimedOut counts members removed with reason "timeout": silent for
	// Config.IdleTimeout, or ended by Member.Timeout.
	TimedOut uint64
}

// New makes a manager for eng's rooms. Run sends the sender reports; tests
// call SendReports instead.
func New(eng *engine.Engine, cfg Config) *Manager {
	m := &Manager{eng: eng, cfg: cfg.withDefaults(), rooms: map[string]*Room{}}
	m.reports.New = func() any { return new(feedback.ListenerReport) }
	return m
}

// Engine is the engine the manager's rooms run on.
func (m *Manager) Engine() *engine.Engine { return m.eng }

// NewRoom creates an engine room (engine.Engine.NewRoom) whose
// participants join through the manager. cfg.OnEvent and cfg.AfterTick
// keep working: the manager hears the room's events first, and flushes
// Config.Flushers before cfg.AfterTick runs.
func (m *Manager) NewRoom(id string, cfg engine.RoomConfig) (*Room, error) {
	r := &Room{m: m, members: map[string]*Member{}}
	r.srs.CNAME = m.cfg.CNAME
	r.srs.Interval = m.cfg.SRInterval
	user := cfg.OnEvent
	cfg.OnEvent = func(e engine.Event) {
		r.onEvent(e)
		if user != nil {
			user(e)
		}
	}
	if fs := m.cfg.Flushers; len(fs) > 0 {
		after := cfg.AfterTick
		cfg.AfterTick = func() {
			for _, f := range fs {
				f.Flush()
			}
			if after != nil {
				after()
			}
		}
	}
	er, err := m.eng.NewRoom(id, cfg)
	if err != nil {
		return nil, err
	}
	r.Room = er
	m.mu.Lock()
	m.rooms[id] = r
	m.mu.Unlock()
	return r, nil
}

// Room finds a room by id.
func (m *Manager) Room(id string) (*Room, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rooms[id]
	return r, ok
}

// Rooms returns every room, sorted by id.
func (m *Manager) Rooms() []*Room {
	m.mu.Lock()
	out := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		out = append(out, r)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID() < out[j].ID() })
	return out
}

// CloseRoom ends a room: every member leaves with reason "room_closed" and
// its link is closed.
func (m *Manager) CloseRoom(id string) error {
	m.mu.Lock()
	_, ok := m.rooms[id]
	delete(m.rooms, id)
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: %q", engine.ErrNoRoom, id)
	}
	return m.eng.CloseRoom(id)
}

// Close closes every room.
func (m *Manager) Close() {
	for _, r := range m.Rooms() {
		_ = m.CloseRoom(r.ID())
	}
}

// SendReports sends the sender reports due at now in every room, spread so
// that each output stream gets one every Config.SRInterval, and the NACKs
// due for every speaker's incoming stream (feedback.SpeakerSession.Poll).
// Run calls it every ReportPeriod; call it yourself to drive time by hand.
func (m *Manager) SendReports(now time.Time) {
	m.pollMu.Lock()
	defer m.pollMu.Unlock()
	for _, r := range m.Rooms() {
		r.sendReports(now)
		m.polled = r.appendSpeakers(m.polled[:0])
		for _, s := range m.polled {
			s.Poll(now)
		}
	}
	clear(m.polled)
}

// Sweep removes, with reason "timeout", every member that used to send
// RTP or RTCP and has sent nothing for Config.IdleTimeout up to now. A
// member's silence is measured from the first Sweep that saw its packet
// count stop moving, so the timeout is exact to the period between
// sweeps. Run calls it every SweepPeriod; call it yourself to drive time by
// hand. It returns how many members it removed.
func (m *Manager) Sweep(now time.Time) int {
	if m.cfg.IdleTimeout < 0 {
		return 0
	}
	m.sweepMu.Lock()
	defer m.sweepMu.Unlock()
	n := 0
	for _, r := range m.Rooms() {
		m.swept = r.appendMembers(m.swept[:0])
		for _, mem := range m.swept {
			if mem.idle(now, m.cfg.IdleTimeout) {
				m.cfg.Logger.Info("participant timed out", "room", r.ID(), "participant", mem.id,
					"idle", now.Sub(mem.lastHeard).Round(time.Millisecond).String())
				if mem.Timeout() {
					n++
				}
			}
		}
	}
	clear(m.swept)
	return n
}

// Run sends sender reports every ReportPeriod and sweeps idle members
// every SweepPeriod until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(ReportPeriod)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			now := m.cfg.Now()
			m.SendReports(now)
			if now.Sub(m.lastSweep) >= SweepPeriod {
				m.lastSweep = now
				m.Sweep(now)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Stats returns the manager's counters.
func (m *Manager) Stats() Stats {
	s := &m.st
	return Stats{
		RTCPReceived: s.rtcpIn.Load(), RTCPMalformed: s.rtcpMalformed.Load(),
		RTCPSent: s.rtcpSent.Load(), RTCPSendErrors: s.rtcpSendErrors.Load(),
		NACKsReceived:        s.nacksIn.Load(),
		SpeakerSessionErrors: s.speakerSessionErrors.Load(),
		TimedOut:             s.timedOut.Load(),
	}
}
