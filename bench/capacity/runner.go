package capacity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hraban/opus"

	"github.com/handsup-audio/handsup/bench/internal/sim"
	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/engine"
)

// Config describes a benchmark: Rooms identical rooms on one engine, each
// with Speakers on stage (the first Active of them talk, the others are
// silent and send DTX) and Listeners in the audience.
type Config struct {
	Rooms     int           // rooms on the engine; at least 1
	Speakers  int           // speakers on each room's stage
	Active    int           // speakers per room who talk; at most Speakers
	Listeners int           // listeners per room
	Duration  time.Duration // the measured run, after the warm-up; at least one tick
	Seed      uint64        // voices, SSRCs and sequence numbers derive from it
	Workers   int           // engine workers; 0 means GOMAXPROCS
	// TransportListeners, when not 0, also measures FanOut: what a
	// listener costs over the engine alone, plain RTP and WebRTC, with this
	// many listeners in each measured room (at least 2); default 0, skip.
	TransportListeners int
	// Progress, if set, hears where the run is: at the start of each
	// phase, and once a second of the real-time run. It is called from
	// the run's goroutines (the engine's clock among them) and must be
	// quick. Default none.
	Progress func(Progress)
}

// Progress is where a Run is, for a progress display.
type Progress struct {
	// Phase is one of the Phase constants, in the order Run goes through
	// them (PhaseTransports only with TransportListeners, PhaseListenerCost
	// only with listeners).
	Phase string
	// Done and Total are the phase's ticks run so far and in all, for
	// PhaseRun (its warm-up included); 0 for the other phases.
	Done, Total int
}

// Run's phases.
const (
	PhaseEncode       = "encoding speech"
	PhaseRun          = "real-time run"
	PhaseListenerCost = "listener cost"
	PhaseTransports   = "transports"
	PhaseCodecFloor   = "codec floor"
)

// progress tells cfg.Progress, if set.
func (c Config) progress(p Progress) {
	if c.Progress != nil {
		c.Progress(p)
	}
}

// Validate reports a configuration Run cannot measure.
func (c Config) Validate() error {
	switch {
	case c.Rooms < 1:
		return fmt.Errorf("capacity: rooms must be at least 1, got %d", c.Rooms)
	case c.Workers < 0:
		return fmt.Errorf("capacity: workers must not be negative, got %d", c.Workers)
	case c.Speakers < 0:
		return fmt.Errorf("capacity: speakers must not be negative, got %d", c.Speakers)
	case c.Active < 0:
		return fmt.Errorf("capacity: active must not be negative, got %d", c.Active)
	case c.Active > c.Speakers:
		return fmt.Errorf("capacity: active (%d) must not exceed speakers (%d)", c.Active, c.Speakers)
	case c.Listeners < 0:
		return fmt.Errorf("capacity: listeners must not be negative, got %d", c.Listeners)
	case c.TransportListeners < 0 || c.TransportListeners == 1:
		return fmt.Errorf("capacity: transport listeners must be 0 or at least 2, got %d", c.TransportListeners)
	case c.Duration < engine.TickInterval:
		return fmt.Errorf("capacity: duration must be at least one tick (%v), got %v", engine.TickInterval, c.Duration)
	}
	return nil
}

// Result is what Run measured. Per-tick figures are per engine tick (all
// rooms together) over the measured ticks, warm-up excluded.
type Result struct {
	Rooms      int     `json:"rooms"`
	Speakers   int     `json:"speakers"`
	Active     int     `json:"active"`
	Listeners  int     `json:"listeners"`
	DurationS  float64 `json:"duration_s"`
	Seed       uint64  `json:"seed"`
	Workers    int     `json:"workers"` // engine workers
	GOMAXPROCS int     `json:"gomaxprocs"`
	GoVersion  string  `json:"go_version"`
	Libopus    string  `json:"libopus,omitempty"`

	Ticks        int     `json:"ticks"`
	TickP50us    float64 `json:"tick_p50_us"` // wall time of Engine.Tick, as OnTick reports it
	TickP99us    float64 `json:"tick_p99_us"`
	TickMaxus    float64 `json:"tick_max_us"`
	TickOverruns uint64  `json:"tick_overruns"` // ticks that started after their 20 ms slot
	TickSkipped  uint64  `json:"tick_skipped"`  // ticks skipped for falling over 100 ms behind

	DecodesPerTick    float64 `json:"decodes_per_tick"`
	EncodesPerTick    float64 `json:"encodes_per_tick"`
	ConcealedPerTick  float64 `json:"concealed_per_tick"`
	DroppedPackets    uint64  `json:"dropped_packets"` // incoming packets the engine refused
	PacketsOutPerTick float64 `json:"packets_out_per_tick"`
	// ListenerPacketsPerTick is what the listeners' sinks received.
	ListenerPacketsPerTick float64 `json:"listener_packets_per_tick"`
	ListenerBytesPerTick   float64 `json:"listener_bytes_per_tick"`

	// CPUusPerTick is the process's CPU time (user+system, every thread)
	// per tick: the engine's work plus the simulated clients' WriteRTP
	// calls, which are the engine's ingest.
	CPUusPerTick float64 `json:"cpu_us_per_tick"`
	// DecodeUS and EncodeUS are libopus's mean CPU time per call, called
	// from Go in tight loops on the run's packets and similar PCM, with as
	// many decoder and encoder states as the engine had and on as many
	// threads as its workers, in process CPU time like CPUusPerTick.
	DecodeUS float64 `json:"decode_us"`
	EncodeUS float64 `json:"encode_us"`
	// CodecFloorUsPerTick is DecodeUS·DecodesPerTick + EncodeUS·EncodesPerTick:
	// the tick's work if everything but libopus were free.
	CodecFloorUsPerTick float64 `json:"codec_floor_us_per_tick"`
	OverheadRatio       float64 `json:"overhead_ratio"` // CPUusPerTick / CodecFloorUsPerTick
	// NsPerListenerTick is what one listener costs per tick, in ns of
	// CPU: ListenerCost's median repeat. It is null when there are no
	// listeners or ListenerCost could not resolve it.
	NsPerListenerTick *float64 `json:"ns_per_listener_tick"`
	// ListenerCost is how NsPerListenerTick was measured, with its spread
	// over repeats; null when Listeners is 0.
	ListenerCost *ListenerCost `json:"listener_cost"`
	// TickTimes is every measured tick's wall time, in order, for plots;
	// not in the JSON.
	TickTimes []time.Duration `json:"-"`
	// AllocsPerTick counts Go heap allocations (runtime.MemStats.Mallocs)
	// per tick, in the whole process.
	AllocsPerTick float64 `json:"allocs_per_tick"`
	// Transports is what a listener costs over each transport, side by
	// side (FanOut); null unless Config.TransportListeners is set.
	Transports *FanOut `json:"transports,omitempty"`
}

// tuning holds the runner's fixed choices; tests shorten them.
type tuning struct {
	warmup     int           // ticks run before measuring: jitter buffers start, encoders settle
	loop       time.Duration // pre-encoded audio per speaker, looped
	floorTicks int           // most ticks of codec work timed for the floor
	floorMin   int           // fewest decodes and encodes timed for the floor
	repeats    int           // repeats of the listener cost
	repeatMin  int           // fewest tick pairs per repeat of the listener cost
	// FanOut's warm-up ticks, ticks per repeat (repeats as above) and
	// allocation-counting ticks per repeat.
	fanWarmup, fanTicks, fanAllocTicks int
}

var defaultTuning = tuning{
	warmup:     50,
	loop:       10 * time.Second,
	floorTicks: 500,
	floorMin:   300,
	repeats:    7,
	repeatMin:  25,

	fanWarmup:     50,
	fanTicks:      48, // a multiple of the 6 rooms: whole rounds of balancedOrder
	fanAllocTicks: 5,
}

// Run builds cfg's rooms on a fresh engine, drives it in real time with
// pre-encoded speech and measures it, then times libopus alone for the
// codec floor. It takes Duration plus a warm-up, plus, when there are
// listeners, about a third of Duration (at least 3.5 s) for ListenerCost,
// plus, with TransportListeners, FanOut's: the clients' connection (a few
// seconds per hundred WebRTC clients) and about 10 s. It returns ctx's
// error if ctx ends first.
func Run(ctx context.Context, cfg Config) (Result, error) {
	return run(ctx, cfg, defaultTuning)
}

func run(ctx context.Context, cfg Config, tun tuning) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	res := Result{
		Rooms: cfg.Rooms, Speakers: cfg.Speakers, Active: cfg.Active, Listeners: cfg.Listeners,
		DurationS: cfg.Duration.Seconds(), Seed: cfg.Seed,
		Workers: engineWorkers(cfg), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		Libopus: strings.TrimPrefix(opus.Version(), "libopus "),
	}
	frames := max(1, int(tun.loop/engine.TickInterval))
	cfg.progress(Progress{Phase: PhaseEncode})
	streams, err := preEncode(ctx, cfg, frames)
	if err != nil {
		return res, err
	}

	ticks := max(1, int(cfg.Duration/engine.TickInterval))
	full, err := measure(ctx, cfg, streams, tun.warmup, ticks)
	if err != nil {
		return res, err
	}
	n := float64(full.ticks)
	res.Ticks = full.ticks
	res.TickP50us = sim.Round(us(sim.Percentile(full.elapsed, 0.50)), 1)
	res.TickP99us = sim.Round(us(sim.Percentile(full.elapsed, 0.99)), 1)
	res.TickMaxus = sim.Round(us(sim.Percentile(full.elapsed, 1)), 1)
	res.TickTimes = full.elapsed
	res.TickOverruns = full.stats.Overruns
	res.TickSkipped = full.stats.Skipped
	res.DecodesPerTick = sim.Round(float64(full.stats.Decodes)/n, 3)
	res.EncodesPerTick = sim.Round(float64(full.stats.Encodes)/n, 3)
	res.ConcealedPerTick = sim.Round(float64(full.stats.Concealed)/n, 3)
	res.DroppedPackets = full.stats.DroppedTotal()
	res.PacketsOutPerTick = sim.Round(float64(full.stats.PacketsOut)/n, 2)
	res.ListenerPacketsPerTick = sim.Round(float64(full.listenerPackets)/n, 2)
	res.ListenerBytesPerTick = sim.Round(float64(full.listenerBytes)/n, 1)
	res.AllocsPerTick = sim.Round(float64(full.mallocs)/n, 3)
	cpuNs := float64(full.cpu.Nanoseconds()) / n
	res.CPUusPerTick = sim.Round(cpuNs/1e3, 2)

	// What a listener costs (its RTP header, its Sink call, its turn in the
	// room's member loops) is small beside the codec work, whose CPU time
	// varies more than that from run to run on a shared machine, so it is
	// measured apart, on twin rooms whose codec work cancels exactly
	// (ListenerCost): about a third of Duration.
	perRepeat := max(tun.repeatMin, ticks/(3*max(1, tun.repeats)))
	if cfg.Listeners > 0 {
		cfg.progress(Progress{Phase: PhaseListenerCost})
	}
	cost, err := listenerCost(ctx, cfg, streams, tun.warmup, tun.repeats, perRepeat)
	if err != nil {
		return res, err
	}
	res.ListenerCost = cost
	if cost != nil && cost.Resolved {
		ns := *cost.NsMedian
		res.NsPerListenerTick = &ns
	}

	if cfg.TransportListeners > 0 {
		cfg.progress(Progress{Phase: PhaseTransports})
	}
	if res.Transports, err = fanOut(ctx, cfg, streams, tun); err != nil {
		return res, err
	}

	cfg.progress(Progress{Phase: PhaseCodecFloor})
	dec, enc, err := codecCost(ctx, cfg, streams, tun, ticks)
	if err != nil {
		return res, err
	}
	res.DecodeUS, res.EncodeUS = sim.Round(dec, 2), sim.Round(enc, 2)
	floor := dec*float64(full.stats.Decodes)/n + enc*float64(full.stats.Encodes)/n
	res.CodecFloorUsPerTick = sim.Round(floor, 2)
	if floor > 0 {
		res.OverheadRatio = sim.Round(cpuNs/1e3/floor, 3)
	}
	return res, nil
}

// CodecCost is the unit cost behind the codec floor
// (Result.CodecFloorUsPerTick) of cfg's rooms, measured alone: libopus's
// CPU µs per decode and per encode, called in tight loops on as many
// threads as the engine's workers, on the packets cfg's speakers send and
// on mixes of their voices, with as many decoder and encoder states as the
// rooms hold. Only cfg's Rooms, Speakers, Active, Seed and Workers count.
// It takes a few seconds, most of them encoding the speakers' packets.
func CodecCost(ctx context.Context, cfg Config) (decodeUS, encodeUS float64, err error) {
	if cfg.Duration == 0 {
		cfg.Duration = engine.TickInterval
	}
	if err := cfg.Validate(); err != nil {
		return 0, 0, err
	}
	tun := defaultTuning
	frames := min(tun.warmup, 10) + tun.floorTicks
	streams, err := preEncode(ctx, cfg, frames)
	if err != nil {
		return 0, 0, err
	}
	return codecCost(ctx, cfg, streams, tun, frames)
}

// codecCost times the codec floor's calls on streams, at most ticks
// frames of them.
func codecCost(ctx context.Context, cfg Config, streams []sim.Stream, tun tuning, ticks int) (dec, enc float64, err error) {
	// Enough frames for floorMin calls, fewer as rooms multiply the calls
	// per frame: a few thousand calls time libopus well.
	floorTicks := min(ticks, tun.floorTicks, max(10, 20000/max(1, cfg.Rooms*(1+cfg.Active))))
	floorWarmup := min(tun.warmup, 10)
	if dec, err = decodeCost(ctx, cfg, streams, floorWarmup, floorTicks, tun.floorMin); err != nil {
		return 0, 0, err
	}
	if enc, err = encodeCost(ctx, cfg, floorWarmup, floorTicks, tun.floorMin); err != nil {
		return 0, 0, err
	}
	return dec, enc, nil
}

// preEncode encodes every speaker's stream, in parallel: this is the
// clients' work, done before the engine is measured. Speaker i of room r
// is speaker number g = r·Speakers+i; active ones speak signal.NewVoice(Seed+g).
func preEncode(ctx context.Context, cfg Config, frames int) ([]sim.Stream, error) {
	streams := make([]sim.Stream, cfg.Rooms*cfg.Speakers)
	jobs := make(chan int)
	errs := make([]error, len(streams))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := range jobs {
				if ctx.Err() != nil {
					errs[g] = ctx.Err()
					continue
				}
				var v *signal.Voice
				if g%cfg.Speakers < cfg.Active {
					v = signal.NewVoice(cfg.Seed + uint64(g))
				}
				streams[g], errs[g] = sim.EncodeStream(v, frames)
			}
		}()
	}
	for g := range streams {
		jobs <- g
	}
	close(jobs)
	wg.Wait()
	return streams, errors.Join(errs...)
}

// sender plays one speaker's stream into the engine as a client would.
type sender struct {
	p *engine.Participant
	sim.Sender
}

// rtpBuf holds one outgoing packet: the header, built per send, and a copy
// of the payload. WriteRTP does not keep it, so one serves every sender.
type rtpBuf [12 + codec.MaxPacketBytes]byte

// next sends the speaker's next 20 ms, unless it is a skipped DTX frame.
// The engine's refusals are counted by the engine (Stats.Dropped).
func (s *sender) next(buf *rtpBuf) {
	if pkt := s.Next(buf[:]); pkt != nil {
		_ = s.p.WriteRTP(pkt)
	}
}

// countSink counts what a room sends to one kind of member. The engine
// ticks a room on one goroutine at a time, each tick ordered after the
// last by the clock, so plain fields suffice; each room has its own, padded
// so rooms ticked on different workers do not share a cache line.
type countSink struct {
	packets, bytes uint64
	_              [48]byte
}

// WriteRTP counts the packet.
func (s *countSink) WriteRTP(header, payload []byte) error {
	s.packets++
	s.bytes += uint64(len(header) + len(payload))
	return nil
}

// snapshot is the process and engine state at a tick boundary.
type snapshot struct {
	cpu                            time.Duration
	mallocs                        uint64
	stats                          engine.Stats
	listenerPackets, listenerBytes uint64
}

// measurement is the difference of two snapshots, over ticks ticks.
type measurement struct {
	ticks                          int
	elapsed                        []time.Duration
	cpu                            time.Duration
	mallocs                        uint64
	stats                          engine.Stats
	listenerPackets, listenerBytes uint64
}

// session is one measured run. Its fields are touched only by the engine's
// clock goroutine (OnTick) until Run returns.
type session struct {
	eng       *engine.Engine
	senders   []sender
	listeners []*countSink
	warmup    int
	ticks     int
	seen      int
	elapsed   []time.Duration
	start     snapshot
	end       snapshot
	finished  bool
	stop      context.CancelFunc
	buf       rtpBuf
	progress  func(Progress)
}

// measure runs cfg's rooms in real time for warmup+ticks ticks and
// measures the last ticks of them.
func measure(ctx context.Context, cfg Config, streams []sim.Stream, warmup, ticks int) (measurement, error) {
	warmup = max(1, warmup)
	s := &session{warmup: warmup, ticks: ticks, elapsed: make([]time.Duration, 0, ticks), progress: cfg.progress}
	// One phase: a tick here is every room's, which the figures are per.
	// No shedding: the figures are the tiers' encodes, at every size, not
	// cheaper ones from the tick that first ran long.
	s.eng = engine.New(engine.Config{OnTick: s.onTick, Workers: cfg.Workers, Phases: 1, Shed: engine.ShedConfig{Off: true}})
	defer s.eng.Close()
	if err := s.build(cfg, streams, cfg.Listeners, nil, nil); err != nil {
		return measurement{}, err
	}

	// Leave the heap clean (pre-encoding made garbage) so a collection
	// does not land in the measured ticks.
	runtime.GC()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	s.stop = stop
	done := make(chan error, 1)
	go func() { done <- s.eng.Run(runCtx) }()
	err := <-done
	if !s.finished {
		if err == nil || errors.Is(err, context.Canceled) {
			err = ctx.Err()
		}
		return measurement{}, err
	}
	m := measurement{
		ticks:           len(s.elapsed),
		elapsed:         s.elapsed,
		cpu:             s.end.cpu - s.start.cpu,
		mallocs:         s.end.mallocs - s.start.mallocs,
		stats:           statsDelta(s.end.stats, s.start.stats),
		listenerPackets: s.end.listenerPackets - s.start.listenerPackets,
		listenerBytes:   s.end.listenerBytes - s.start.listenerBytes,
	}
	return m, nil
}

// build creates the rooms, speakers (with their senders) and listeners.
// join, when set, gives listener i's config and sink (one room only);
// without it the listeners of a room share a counting sink. afterTick is
// the rooms' engine.RoomConfig.AfterTick.
func (s *session) build(cfg Config, streams []sim.Stream, listeners int,
	join func(i int) (engine.ParticipantConfig, error), afterTick func()) error {
	rng := sim.SplitMix(cfg.Seed)
	for r := range cfg.Rooms {
		room, err := s.eng.NewRoom(fmt.Sprintf("room-%d", r), engine.RoomConfig{AfterTick: afterTick})
		if err != nil {
			return err
		}
		speakerSink, listenerSink := new(countSink), new(countSink)
		s.listeners = append(s.listeners, listenerSink)
		for i := range cfg.Speakers {
			g := r*cfg.Speakers + i
			p, err := room.Join(fmt.Sprintf("speaker-%d", i), engine.ParticipantConfig{
				Role: engine.Speaker, Sink: speakerSink, SSRC: uint32(rng()) | 1,
			})
			if err != nil {
				return err
			}
			s.senders = append(s.senders, sender{
				p: p, Sender: sim.NewSender(&streams[g], uint32(rng())|1, uint16(rng()), uint32(rng())),
			})
		}
		for i := range listeners {
			pc := engine.ParticipantConfig{Role: engine.Listener, Sink: listenerSink}
			if join != nil {
				if pc, err = join(i); err != nil {
					return err
				}
			}
			if _, err := room.Join(fmt.Sprintf("listener-%d", i), pc); err != nil {
				return err
			}
		}
	}
	return nil
}

// onTick runs on the engine's clock goroutine after each tick: it takes the
// snapshots that bound the measurement, records the tick's time, and sends
// every speaker's next packet for the next tick.
func (s *session) onTick(t engine.TickTime) {
	elapsed := t.Took
	s.seen++
	if s.progress != nil && s.seen%50 == 1 {
		s.progress(Progress{Phase: PhaseRun, Done: s.seen, Total: s.warmup + s.ticks})
	}
	switch {
	case s.seen < s.warmup:
	case s.seen == s.warmup:
		s.start = s.snapshot(false)
	case s.seen <= s.warmup+s.ticks:
		s.elapsed = append(s.elapsed, elapsed)
		if s.seen == s.warmup+s.ticks {
			s.end = s.snapshot(true)
			s.finished = true
			s.stop()
			return
		}
	default:
		return // a tick that ran before Run saw the cancel
	}
	for i := range s.senders {
		s.senders[i].next(&s.buf)
	}
}

// snapshot reads the counters. The CPU clock is read last at the start
// and first at the end, so the snapshot's own cost stays outside.
func (s *session) snapshot(end bool) snapshot {
	var snap snapshot
	if end {
		snap.cpu = cpuTime()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	snap.mallocs = ms.Mallocs
	snap.stats = s.eng.Stats()
	for _, l := range s.listeners {
		snap.listenerPackets += l.packets
		snap.listenerBytes += l.bytes
	}
	if !end {
		snap.cpu = cpuTime()
	}
	return snap
}

// cpuTime is the process's user plus system CPU time, all threads.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// statsDelta is a − b for the figures the result uses.
func statsDelta(a, b engine.Stats) engine.Stats {
	d := engine.Stats{
		Ticks: a.Ticks - b.Ticks, Overruns: a.Overruns - b.Overruns, Skipped: a.Skipped - b.Skipped,
	}
	d.Decodes = a.Decodes - b.Decodes
	d.Encodes = a.Encodes - b.Encodes
	d.Concealed = a.Concealed - b.Concealed
	d.FECRecovered = a.FECRecovered - b.FECRecovered
	d.PacketsIn = a.PacketsIn - b.PacketsIn
	d.PacketsOut = a.PacketsOut - b.PacketsOut
	d.BytesOut = a.BytesOut - b.BytesOut
	for i := range d.Dropped {
		d.Dropped[i] = a.Dropped[i] - b.Dropped[i]
	}
	return d
}

// decodeCost is libopus's mean decode CPU time in µs on the run's streams:
// one decoder per speaker of every room, as the engine has, called in the
// engine's order (each frame, every room's speakers), so the floor pays the
// same cache misses over that many decoder states. The warm-up frames run
// untimed; at least minOps decodes are timed.
func decodeCost(ctx context.Context, cfg Config, streams []sim.Stream, warmup, ticks, minOps int) (float64, error) {
	if cfg.Speakers == 0 {
		return 0, nil
	}
	type op struct {
		dec     int
		payload []byte
	}
	var ops []op
	untimed := 0
	loop := streams[0].Frames()
	for f := 0; f < 4*loop && (f < warmup+ticks || len(ops)-untimed < minOps); f++ {
		for g := range streams {
			if payload, send := streams[g].Frame(f % loop); send {
				ops = append(ops, op{g, payload})
			}
		}
		if f < warmup {
			untimed = len(ops)
		}
	}
	decs := make([]*codec.Decoder, len(streams))
	for i := range decs {
		var err error
		if decs[i], err = codec.NewDecoder(); err != nil {
			return 0, err
		}
	}
	if len(ops) == untimed {
		return 0, nil
	}
	// Each room's decoders belong to one thread, as a room is ticked by one
	// worker at a time.
	return timeOnThreads(ctx, floorThreads(cfg), func(th, threads int, startTimed func()) (int, error) {
		pcm := make([]int16, codec.MaxFrameSamples)
		timed := 0
		for k, o := range ops {
			if k == untimed {
				startTimed()
			}
			if (o.dec/cfg.Speakers)%threads != th {
				continue
			}
			if _, err := decs[o.dec].Decode(o.payload, pcm); err != nil {
				return 0, err
			}
			if k >= untimed {
				timed++
			}
		}
		return timed, nil
	})
}

// floorThreads is how many threads the engine ran codec calls on at once:
// its workers, one room each at a time. Two libopus calls running at once
// on this kind of machine each take about 15% longer than one alone (cores
// share caches and memory bandwidth), so the floor runs as many at once.
func floorThreads(cfg Config) int { return max(1, min(engineWorkers(cfg), cfg.Rooms)) }

// engineWorkers is the engine's worker count for cfg.
func engineWorkers(cfg Config) int {
	if cfg.Workers > 0 {
		return cfg.Workers
	}
	return runtime.GOMAXPROCS(0)
}

// timeOnThreads runs work on threads goroutines, each locked to its own OS
// thread, and returns the process's CPU µs per timed call. Each work
// function warms up, calls startTimed (which waits until every thread is
// warm), then makes its timed calls and returns how many. Process CPU, not
// thread CPU, is what the engine is measured in too: it includes what the
// Go runtime spends around long cgo calls on other threads.
func timeOnThreads(ctx context.Context, threads int, work func(th, threads int, startTimed func()) (int, error)) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var warm, done sync.WaitGroup
	start := make(chan struct{})
	calls := make([]int, threads)
	errs := make([]error, threads)
	warm.Add(threads)
	done.Add(threads)
	for th := range threads {
		go func() {
			defer done.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			once := false
			startTimed := func() {
				if !once {
					once = true
					warm.Done()
					<-start
				}
			}
			calls[th], errs[th] = work(th, threads, startTimed)
			startTimed() // a thread with nothing to time must not hold the others
		}()
	}
	warm.Wait()
	t0 := cpuTime()
	close(start)
	done.Wait()
	total := cpuTime() - t0
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	n := 0
	for _, c := range calls {
		n += c
	}
	if n == 0 {
		return 0, nil
	}
	return us(total) / float64(n), nil
}

// encodeCost is libopus's mean encode CPU time in µs with the room's default
// encoder settings, on what the engine encodes: a mix of the talking voices
// (for the shared encoder) and each talker's mix-minus (for its private
// one), with one encoder per output of every room, on as many threads as
// the engine's workers, at least minOps encodes. The warm-up frames run
// untimed.
func encodeCost(ctx context.Context, cfg Config, warmup, ticks, minOps int) (float64, error) {
	outputs := 1 + cfg.Active
	ticks = max(ticks, (minOps+outputs-1)/outputs)
	frames := warmup + ticks
	voices := make([][]int16, cfg.Active)
	for i := range voices {
		voices[i] = make([]int16, frames*codec.FrameSamples)
		signal.NewVoice(cfg.Seed + uint64(i)).Fill(voices[i])
	}
	// pcm[f][k]: output k of frame f; 0 is the whole mix, k the mix
	// without voice k−1. The engine's limiter is replaced by clipping: the
	// encoder's cost does not depend on it.
	pcm := make([]int16, frames*outputs*codec.FrameSamples)
	for f := range frames {
		for j := range codec.FrameSamples {
			at := f*codec.FrameSamples + j
			var sum int32
			for _, v := range voices {
				sum += int32(v[at])
			}
			for k := range outputs {
				x := sum
				if k > 0 {
					x -= int32(voices[k-1][at])
				}
				pcm[(f*outputs+k)*codec.FrameSamples+j] = int16(max(math.MinInt16, min(math.MaxInt16, x)))
			}
		}
	}
	// One encoder per output of every room, as the engine has, so the floor
	// pays the same cache misses over that many encoder states.
	encs := make([]*codec.Encoder, cfg.Rooms*outputs)
	for k := range encs {
		var err error
		if encs[k], err = codec.NewEncoder(codec.EncoderConfig{}); err != nil {
			return 0, err
		}
	}
	return timeOnThreads(ctx, floorThreads(cfg), func(th, threads int, startTimed func()) (int, error) {
		out := make([]byte, codec.MaxPacketBytes)
		timed := 0
		for f := range frames {
			if f == warmup {
				startTimed()
			}
			for e, enc := range encs {
				if (e/outputs)%threads != th { // room e/outputs is this thread's
					continue
				}
				at := (f*outputs + e%outputs) * codec.FrameSamples
				if _, err := enc.Encode(pcm[at:at+codec.FrameSamples], out); err != nil {
					return 0, err
				}
				if f >= warmup {
					timed++
				}
			}
		}
		return timed, nil
	})
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
