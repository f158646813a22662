package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/handsup-audio/handsup/access"
	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/metrics"
	"github.com/handsup-audio/handsup/session"
	"github.com/handsup-audio/handsup/session/rtpudp"
	"github.com/handsup-audio/handsup/session/webrtc"
)

// Config is the server's settings; cmd/handsup fills it from flags and
// HANDSUP_* variables.
type Config struct {
	HTTPAddr string // default 127.0.0.1:8080
	RTPAddr  string // default 127.0.0.1:5004
	// PublicRTPAddr is the RTP address told to clients; default the
	// socket's own address.
	PublicRTPAddr string
	// NoRTCPPort turns off the RTCP socket on the RTP port + 1 (where
	// ffmpeg sends its RTCP); by default the server listens there too.
	NoRTCPPort bool
	// AdminToken is the bearer token that may do everything; at least 16
	// characters; required off loopback. Without one, every request
	// without a credential is the admin's.
	AdminToken string
	// TokenKey is the HMAC-SHA256 key of participant tokens, shared with
	// the app's backend (at least 32 bytes); default random per start, so
	// that only POST /v1/rooms/{room}/tokens can mint them.
	TokenKey []byte
	// KickBan is how long a participant removed by a moderator or the
	// admin may not rejoin the room with a token; default 10 min,
	// negative: no ban.
	KickBan time.Duration
	// JitterExtraDelay is every speaker's jitter.Config.ExtraDelay: up to
	// this much more delay on a jittery uplink (none on a clean one) for
	// fewer late packets concealed; default 0, at most 200 ms.
	JitterExtraDelay time.Duration
	MaxBodyBytes     int64 // default 64 KiB
	// BodyTimeout bounds the time to read a request's body (a slow client
	// holding a connection open), answered 408; default 10 s. Event
	// streams have no body and are not cut.
	BodyTimeout time.Duration
	// WriteTimeout bounds the time to write an answer, from the request's
	// start (a client that does not read); default 30 s. Event streams
	// have their own deadline per write, 30 s, beside heartbeats.
	WriteTimeout time.Duration
	// MaxConns bounds the API's open connections; past it a connection
	// gets 503 at once and is closed (counted in
	// handsup_http_connections_refused_total); default 10,000.
	MaxConns int
	// HTTPIdleTimeout closes a keep-alive connection idle this long, so
	// that idle clients cannot hold the server's file descriptors;
	// default 30 s.
	HTTPIdleTimeout time.Duration
	Pprof           bool   // serve /debug/pprof, to the admin token only
	DemoRoom        string // create this open room at start
	Workers         int    // engine workers; default GOMAXPROCS
	Phases          int    // engine.Config.Phases: clocks the rooms are spread over; default 4
	// ShedComplexity is the Opus complexity every room's encoders drop to
	// while the engine sheds load (engine.Config.Shed); default 1, -1 never
	// sheds.
	ShedComplexity int

	// Admission control: past a cap a new room or join is refused with a
	// clear status and counted (handsup_admission_refused_total), so that
	// one room, one crowd or a join storm cannot degrade every room.
	MaxRooms            int // rooms at most (503); default 1000
	MaxParticipants     int // participants in every room at most (503); default 10,000
	MaxRoomParticipants int // a room's members at most, listeners included (409); default 5,000
	// MaxSpeakers is a room's stage (speakers and moderators) when its
	// request sets no max_speakers (409 past it); default 100.
	MaxSpeakers int
	JoinRate    float64 // joins a second, every room and transport (429 with Retry-After); default 50
	JoinBurst   int     // joins at once before JoinRate applies; default 100
	// MaxTickLoad refuses new rooms and joins (503) while the engine's
	// smoothed tick time is above this share of its 20 ms tick
	// (engine.Config.MaxTickLoad); default 0, off.
	MaxTickLoad float64
	// MaxEventStreams and MaxRoomEventStreams bound the open event
	// streams of the server and of a room (503 with Retry-After past
	// either); default 10,000 and 5,000.
	MaxEventStreams, MaxRoomEventStreams int

	// SRInterval is how long the server takes to send a sender report on
	// every output stream once; default 5 s.
	SRInterval time.Duration
	// IdleTimeout removes a participant that sent RTP or RTCP and then
	// nothing for this long (reason "timeout"); default 30 s, negative:
	// never. Receive-only listeners that never send are kept.
	IdleTimeout time.Duration
	// WebRTC configures WHIP and WHEP participants; WebRTC is off unless
	// WebRTC.UDPAddr is set (cmd/handsup's -webrtc-udp). The server sets
	// OnFailed (the member leaves with reason "timeout") and OnClosed
	// (reason "left").
	WebRTC webrtc.Config
	// ICEServers are the STUN and TURN servers handed to WebRTC clients in
	// the Link headers of WHIP and WHEP answers (RFC 9725 §4.6), TURN with
	// ephemeral credentials per answer; default none.
	ICEServers webrtc.ICEServers
	// EventBacklog is how many of a room's latest events it keeps for
	// event streams that reconnect with Last-Event-ID; default 1024. A
	// stream whose id is older gets a snapshot instead. It is also every
	// stream's buffer: a stream that falls further behind is disconnected.
	EventBacklog int
	// MetricsPerRoom adds the handsup_room_* families to /metrics, one
	// series per open room labelled room, for at most MetricsPerRoomMax
	// rooms (default 100; the others are counted in
	// handsup_metrics_rooms_omitted); default off: no room label at all.
	MetricsPerRoom    bool
	MetricsPerRoomMax int
	// EventHeartbeat is how often an event stream carries a comment line
	// (": ping"), so that proxies and clients see an idle stream alive;
	// default 15 s.
	EventHeartbeat time.Duration
	Logger         *slog.Logger
	// Now is the server's clock for tokens, bans and the hand queue;
	// default time.Now.
	Now func() time.Time
}

// minAdminToken is the shortest admin token accepted.
const minAdminToken = 16

func (c Config) withDefaults() (Config, error) {
	if c.HTTPAddr == "" {
		c.HTTPAddr = "127.0.0.1:8080"
	}
	if c.RTPAddr == "" {
		c.RTPAddr = "127.0.0.1:5004"
	}
	if c.EventHeartbeat <= 0 {
		c.EventHeartbeat = 15 * time.Second
	}
	if c.EventBacklog <= 0 {
		c.EventBacklog = 1024
	}
	if c.HTTPIdleTimeout <= 0 {
		c.HTTPIdleTimeout = 30 * time.Second
	}
	if c.MaxRooms <= 0 {
		c.MaxRooms = 1000
	}
	if c.MaxParticipants <= 0 {
		c.MaxParticipants = 10_000
	}
	if c.MaxRoomParticipants <= 0 {
		c.MaxRoomParticipants = 5000
	}
	if c.MaxSpeakers <= 0 {
		c.MaxSpeakers = 100
	}
	if c.JoinRate <= 0 {
		c.JoinRate = 50
	}
	if c.JoinBurst <= 0 {
		c.JoinBurst = 100
	}
	if c.MaxEventStreams <= 0 {
		c.MaxEventStreams = 10_000
	}
	if c.MaxRoomEventStreams <= 0 {
		c.MaxRoomEventStreams = 5000
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 30 * time.Second
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 10_000
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = 10 * time.Second
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 64 << 10
	}
	if c.KickBan == 0 {
		c.KickBan = 10 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if err := c.ICEServers.Validate(); err != nil {
		return c, err
	}
	if c.JitterExtraDelay < 0 || c.JitterExtraDelay > maxJitterExtra {
		return c, fmt.Errorf("jitter extra delay %v: want 0 to %v", c.JitterExtraDelay, maxJitterExtra)
	}
	if c.AdminToken == "" && !loopback(c.HTTPAddr) {
		return c, fmt.Errorf("refusing to serve the API on %s without an admin token: set HANDSUP_ADMIN_TOKEN or -admin-token-file, or listen on a loopback address", c.HTTPAddr)
	}
	if c.AdminToken != "" && len(c.AdminToken) < minAdminToken {
		return c, fmt.Errorf("the admin token is %d characters: it must have at least %d", len(c.AdminToken), minAdminToken)
	}
	return c, nil
}

// maxJitterExtra bounds Config.JitterExtraDelay: past it the delay is no
// longer a trade a live room would make.
const maxJitterExtra = 200 * time.Millisecond

// loopback reports whether addr's host is a loopback address.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Server is a running handsup server.
type Server struct {
	cfg      Config
	log      *slog.Logger
	eng      *engine.Engine
	sessions *session.Manager
	udp      *rtpudp.Transport
	webrtc   *webrtc.Transport // nil when WebRTC is off
	reg      *prometheus.Registry
	metrics  *metrics.Collector
	tokens   *access.Authority
	admit    *admission
	events   eventStats // every room's event streams
	httpLn   net.Listener
	conns    *connLimit // httpLn with its cap
	http     *http.Server

	mu    sync.Mutex
	rooms map[string]*room // the session's rooms with the server's state

	draining atomic.Bool
	ready    atomic.Bool
}

// room is a session room with what the server adds: its UDP send batch,
// and its event subscribers.
type room struct {
	*session.Room
	batch *rtpudp.Batch
	hub   *hub
	// instance tells this room from an earlier one of the same id: the
	// tokens and invites issued for it carry it ("rin").
	instance string
}

// New opens the sockets; Run serves.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	key := cfg.TokenKey
	if len(key) == 0 {
		key = make([]byte, access.MinKeyBytes)
		_, _ = rand.Read(key)
		cfg.Logger.Info("participant tokens: random key for this run; only POST /v1/rooms/{room}/tokens and /invites mint tokens (set HANDSUP_TOKEN_KEY or -token-key-file to mint them offline)")
	}
	tokens, err := access.New(access.Config{Key: key, MaxTTL: maxTokenTTL})
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	s := &Server{
		cfg:    cfg,
		log:    cfg.Logger,
		reg:    prometheus.NewRegistry(),
		tokens: tokens,
		admit:  newAdmission(cfg.JoinRate, cfg.JoinBurst),
		events: eventStats{limit: int64(cfg.MaxEventStreams)},
		rooms:  map[string]*room{},
	}
	// WebRTC listens first, so that the plain-RTP transport refuses its
	// socket as a participant's address too.
	var reserved []netip.AddrPort
	if cfg.WebRTC.UDPAddr != "" {
		wc := cfg.WebRTC
		wc.OnFailed = func(p *webrtc.Peer) { s.kickPeer(p, session.ReasonTimeout) }
		wc.OnClosed = func(p *webrtc.Peer) { s.kickPeer(p, engine.ReasonLeft) }
		if s.webrtc, err = webrtc.Listen(wc); err != nil {
			return nil, err
		}
		reserved = append(reserved, s.webrtc.UDPAddr())
	}
	if pub, err := netip.ParseAddrPort(cfg.PublicRTPAddr); err == nil {
		reserved = append(reserved, pub) // behind a NAT, it leads back here
	}
	s.udp, err = rtpudp.Listen(rtpudp.Config{Addr: cfg.RTPAddr, NoRTCPPort: cfg.NoRTCPPort, Logger: cfg.Logger,
		Reserved: reserved, ReadOnDrain: true})
	if err != nil {
		if s.webrtc != nil {
			_ = s.webrtc.Close()
		}
		return nil, err
	}
	var collector *metrics.Collector
	s.eng = engine.New(engine.Config{
		Workers:         cfg.Workers,
		Phases:          cfg.Phases,
		MaxRooms:        cfg.MaxRooms,
		MaxParticipants: cfg.MaxParticipants,
		MaxTickLoad:     cfg.MaxTickLoad,
		Shed:            engine.ShedConfig{Off: cfg.ShedComplexity < 0, Complexity: cfg.ShedComplexity},
		BeforeTick:      s.udp.Drain, // the RTP socket is read here, at each tick's start (rtpudp.Config.ReadOnDrain)
		OnTick: func(t engine.TickTime) {
			if collector != nil {
				collector.ObserveTick(t.Took)
			}
		},
	})
	sc := session.Config{SRInterval: cfg.SRInterval, IdleTimeout: cfg.IdleTimeout, Logger: s.log}
	if s.webrtc != nil {
		sc.Flushers = []session.Flusher{s.webrtc}
	}
	s.sessions = session.New(s.eng, sc)
	collector = metrics.New(s.eng, metrics.Options{PerRoom: cfg.MetricsPerRoom, MaxRooms: cfg.MetricsPerRoomMax})
	s.metrics = collector
	s.reg.MustRegister(collector, metrics.NewBuildInfo(),
		session.NewCollector(s.sessions),
		rtpudp.NewCollector(s.udp),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.reg.MustRegister(s.events.collectors()...)
	s.reg.MustRegister(s.admit.collector())
	s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "handsup_ready",
		Help: "1 while the server serves and is not shutting down (when /readyz answers 200), else 0.",
	}, func() float64 {
		if s.ready.Load() && !s.draining.Load() {
			return 1
		}
		return 0
	}))
	if s.webrtc != nil {
		s.reg.MustRegister(webrtc.NewCollector(s.webrtc))
	}

	s.httpLn, err = net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		s.closeAll()
		return nil, fmt.Errorf("http listen %s: %w", cfg.HTTPAddr, err)
	}
	s.conns = &connLimit{Listener: s.httpLn, max: int64(cfg.MaxConns)}
	s.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "handsup_http_connections_refused_total",
		Help: "API connections answered 503 and closed at once: the server had -max-conns open."},
		func() float64 { return float64(s.conns.refused.Load()) }))
	s.http = &http.Server{
		Handler:           s.writeDeadline(instrumentHTTP(s.reg, s.routes())),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       cfg.HTTPIdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	if cfg.DemoRoom != "" {
		if _, err := s.createRoom(createRoomRequest{ID: cfg.DemoRoom}); err != nil {
			s.closeAll()
			return nil, fmt.Errorf("demo room: %w", err)
		}
	}
	return s, nil
}

// now is the server's clock.
func (s *Server) now() time.Time { return s.cfg.Now() }

// HTTPAddr is the address the API listens on.
func (s *Server) HTTPAddr() net.Addr { return s.httpLn.Addr() }

// WebRTCAddr is the ICE UDP address of WebRTC peers; the zero value when
// WebRTC is off.
func (s *Server) WebRTCAddr() netip.AddrPort {
	if s.webrtc == nil {
		return netip.AddrPort{}
	}
	return s.webrtc.UDPAddr()
}

// RTPAddr is the UDP address RTP and RTCP arrive on.
func (s *Server) RTPAddr() netip.AddrPort { return s.udp.LocalAddr() }

func (s *Server) publicRTPAddr() string {
	if s.cfg.PublicRTPAddr != "" {
		return s.cfg.PublicRTPAddr
	}
	return s.udp.LocalAddr().String()
}

// Run serves until ctx ends, then shuts down within about two seconds:
// joins are refused, rooms close (every participant leaves), and the HTTP
// server drains.
func (s *Server) Run(ctx context.Context) error {
	errs := make(chan error, 3)
	go func() { errs <- s.udp.Serve(context.Background()) }()
	go func() { errs <- s.eng.Run(context.Background()) }()
	reports, stopReports := context.WithCancel(context.Background())
	defer stopReports()
	go func() { _ = s.sessions.Run(reports) }()
	go func() {
		if err := s.http.Serve(s.conns); !errors.Is(err, http.ErrServerClosed) {
			errs <- err
		}
	}()
	s.ready.Store(true)
	s.log.Info("serving", "http", s.HTTPAddr().String(), "rtp", s.RTPAddr().String(),
		"webrtc", s.WebRTCAddr().String(),
		"auth", s.cfg.AdminToken != "")

	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
		s.log.Error("stopping after a failure", "err", err)
	}
	s.shutdown()
	return err
}

func (s *Server) shutdown() {
	s.ready.Store(false)
	s.draining.Store(true)
	s.log.Info("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	s.closeAll()
	if err := s.http.Shutdown(ctx); err != nil {
		_ = s.http.Close() // SSE streams that did not end in time
	}
}

// closeAll closes every room, the engine and the socket.
func (s *Server) closeAll() {
	s.mu.Lock()
	ids := make([]string, 0, len(s.rooms))
	for id := range s.rooms {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		_ = s.deleteRoom(id)
	}
	s.eng.Close()
	_ = s.udp.Close()
	if s.webrtc != nil {
		_ = s.webrtc.Close()
	}
}
