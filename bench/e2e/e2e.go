package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"time"

	"github.com/handsup-audio/handsup/engine"
)

// Config sets up a run. The zero value works: every zero field takes the
// default written beside it.
type Config struct {
	Listeners []int         // listener counts per room, one step each; default {800}
	Rooms     int           // rooms on the server, alike; default 1
	Repeats   int           // handsup and floor runs per step, interleaved; default 3
	Duration  time.Duration // measured window of each run; default 10 s
	WarmUp    time.Duration // before the window, once every listener joined; default 2 s
	Speakers  int           // speakers on each room's stage; default 3
	// Talking is how many of each room's speakers talk (speech-like
	// voices); the others are silent and send Opus DTX, as WebRTC
	// clients do (a comfort-noise packet every 400 ms); default all.
	Talking int
	Workers int // the server's engine workers; default its GOMAXPROCS
	// ServerProcs is the server child's GOMAXPROCS; default Go's (the
	// number of CPUs). cmd/handsup-bench passes its own, as
	// cmd/internal/procs sets it for an engine.
	ServerProcs int
	// JoinRate, if set, joins the listeners into the live room at this
	// many a second (speakers talking) and reports how long joins took and
	// the ticks skipped meanwhile; default 0: they join as fast as they go.
	JoinRate float64
	// SendSplit is the server room's engine.RoomConfig.SendSplit: its
	// sends are split across workers from this many listeners; default
	// the engine's.
	SendSplit int
	// Phases is the server engine's Config.Phases: its rooms' ticks
	// spread over this many clocks 20 ms/Phases apart; default the
	// engine's.
	Phases int
	// ShedComplexity is the server engine's Config.Shed.Complexity: the
	// Opus complexity its encoders drop to while its ticks near their
	// 20 ms; default the engine's, -1 never sheds.
	ShedComplexity int
	Receivers      int  // the client's receiving sockets (ports); default 4
	NoFloor        bool // run handsup alone, without the floor
	// Paired runs handsup and the floor at once in each repeat, in the
	// same window, each to listeners of its own (the client's receivers
	// twice over, on ports of their own), rather than one after the
	// other: the ratio is then of two figures taken on the same machine
	// at the same moment, and the drift of a shared machine's speed
	// between runs leaves it. Each sender shares the machine with the
	// other, so the CPU figures are not those of a sender alone, and
	// the floor, the leaner, loses more to the sharing: at 3,200
	// listeners here paired ratios ran about 0.1 below back-to-back ones
	// (docs/performance.md). They are for comparing server builds; past
	// about 6,400 listeners the two and the client need more than two
	// cores.
	Paired bool
	// FloorReader adds a third sender each repeat: the floor with a
	// goroutine parked reading its socket in Go's netpoller, as a
	// server's receive loop is.
	FloorReader bool
	// FloorFragmentable runs the floor on a socket without the
	// don't-fragment bit, as the first floor was: the kernel then
	// draws an IP identifier per datagram, which session/rtpudp's socket
	// does not pay. By default (false) the floor's socket sets it as
	// rtpudp's does, so the ratio is handsup's own overhead.
	FloorFragmentable bool
	// Profile, if set, is where the server child writes a CPU profile of
	// its measured window (the first repeat of each step; with several
	// steps, Profile.N).
	Profile string
	// Command makes a child process's command; default this executable,
	// which must call ChildMain first thing. The role goes in its
	// environment.
	Command func() (*exec.Cmd, error)
	// Progress, if set, hears a line per run.
	Progress func(line string)
}

func (c Config) withDefaults() Config {
	if len(c.Listeners) == 0 {
		c.Listeners = []int{800}
	}
	if c.Repeats <= 0 {
		c.Repeats = 3
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.WarmUp <= 0 {
		c.WarmUp = 2 * time.Second
	}
	if c.Speakers <= 0 {
		c.Speakers = 3
	}
	if c.Rooms <= 0 {
		c.Rooms = 1
	}
	if c.Talking <= 0 || c.Talking > c.Speakers {
		c.Talking = c.Speakers
	}
	if c.Receivers <= 0 {
		c.Receivers = 4
	}
	if c.Phases == 0 {
		c.Phases = engine.DefaultPhases
	}
	if c.ShedComplexity == 0 {
		c.ShedComplexity = engine.DefaultShedComplexity
	}
	if c.Command == nil {
		c.Command = func() (*exec.Cmd, error) {
			exe, err := os.Executable()
			if err != nil {
				return nil, err
			}
			return exec.Command(exe), nil
		}
	}
	if c.Progress == nil {
		c.Progress = func(string) {}
	}
	return c
}

// Validate reports a setting Run cannot take.
func (c Config) Validate() error {
	for _, n := range c.Listeners {
		if n < 1 || n > 100000 {
			return fmt.Errorf("listeners %d: want 1 to 100,000", n)
		}
	}
	if c.Speakers < 0 || c.Speakers > 16 {
		return fmt.Errorf("speakers %d: want 0 (default 3) to 16", c.Speakers)
	}
	if c.Rooms < 0 || c.Rooms > 1000 {
		return fmt.Errorf("rooms %d: want 1 to 1000", c.Rooms)
	}
	for _, n := range c.Listeners {
		if n*max(1, c.Rooms) > 100000 {
			return fmt.Errorf("%d rooms of %d listeners: at most 100,000 in all", c.Rooms, n)
		}
	}
	if c.JoinRate < 0 {
		return fmt.Errorf("join rate %g: want ≥ 0", c.JoinRate)
	}
	if c.Receivers < 0 || c.Receivers > 64 {
		return fmt.Errorf("receivers %d: want 0 (default 4) to 64", c.Receivers)
	}
	if c.Phases < 0 || c.Phases > engine.MaxPhases {
		return fmt.Errorf("phases %d: want 0 (the engine's default) to %d", c.Phases, engine.MaxPhases)
	}
	if c.Paired && (c.NoFloor || c.FloorReader) {
		return errors.New("paired runs handsup beside the floor: not with no-floor or floor-reader")
	}
	if c.ShedComplexity < -1 || c.ShedComplexity > 10 {
		return fmt.Errorf("shed complexity %d: want -1 (never shed), 0 (the engine's default) or 1 to 10", c.ShedComplexity)
	}
	return nil
}

// Kinds of sender.
const (
	KindHandsup     = "handsup"
	KindFloor       = "floor"
	KindFloorReader = "floor+reader"
)

// Result is a whole run.
type Result struct {
	GoVersion  string  `json:"go_version"`
	NumCPU     int     `json:"num_cpu"`
	Load       string  `json:"load_average"` // /proc/loadavg at the start
	LoadAfter  string  `json:"load_average_after"`
	DurationS  float64 `json:"window_s"`
	Repeats    int     `json:"repeats"`
	Speakers   int     `json:"speakers"`
	Talking    int     `json:"talking"`
	Rooms      int     `json:"rooms"`
	JoinRate   float64 `json:"join_rate,omitempty"`
	Paired     bool    `json:"paired,omitempty"` // handsup and the floor ran at once (Config.Paired)
	ClientRcv  int     `json:"client_rcvbuf"`    // what the kernel granted the receiving sockets
	Steps      []Step  `json:"steps"`
	LargestN   int     `json:"largest_n"` // the largest N where handsup delivered ≥ 99.9% to ≥ 99% of listeners in every repeat; 0: none
	Note       string  `json:"note"`
	ServerProc int     `json:"server_gomaxprocs,omitempty"`
	Phases     int     `json:"phases"` // the server engine's Config.Phases
	// ShedComplexity is the server engine's Config.Shed.Complexity; -1:
	// it never shed.
	ShedComplexity int `json:"shed_complexity"`
}

// Step is one listener count: every run, and the medians.
type Step struct {
	Listeners int `json:"listeners"` // per room
	// Ratio is handsup's CPU over the floor's, per repeat (each repeat's
	// pair ran back to back, or at once with Config.Paired).
	Ratio Spread `json:"cpu_ratio"`
	// PacketRatio is handsup's CPU per datagram sent over the floor's, per
	// repeat: the same where both sent every tick's packets, and fair
	// where one of them was starved and skipped ticks (a loaded machine).
	PacketRatio Spread `json:"cpu_per_packet_ratio"`
	// The codec floor, per repeat: libopus's CPU per call timed alone
	// (bench/capacity.CodecCost) on the rooms' calls, after the pair ran;
	// CodecPct is what handsup's decodes and encodes a tick cost at that
	// rate, in % of one core; FloorsRatio is handsup's CPU over the codec
	// floor plus the floor's, what a server must pay at least.
	DecodeUS    Spread            `json:"decode_us"`
	EncodeUS    Spread            `json:"encode_us"`
	CodecPct    Spread            `json:"codec_floor_cpu_pct"`
	FloorsRatio Spread            `json:"cpu_ratio_to_codec_and_send_floor"`
	Summary     map[string]Sum    `json:"summary"` // by kind
	Runs        []RunStats        `json:"runs"`
	Note        map[string]string `json:"-"`
}

// Spread is the median of the repeats, and the least and greatest.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func spreadOf(v []float64) Spread {
	if len(v) == 0 {
		return Spread{}
	}
	v = slices.Clone(v)
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + med) / 2
	}
	return Spread{Median: med, Min: v[0], Max: v[len(v)-1]}
}

// Sum is one kind's runs of a step.
type Sum struct {
	CPUPct          Spread `json:"cpu_pct"`
	CPUusPerPkt     Spread `json:"cpu_us_per_packet"`
	ClientCPUPct    Spread `json:"client_cpu_pct"`
	PerListenerPerS Spread `json:"per_listener_per_s"`
	DeliveredPct    Spread `json:"delivered_pct"`
	Under98Pct      Spread `json:"under_98_pct"`  // of listeners
	Under999Pct     Spread `json:"under_999_pct"` // of listeners
	InterArrivalP99 Spread `json:"inter_arrival_p99_ms"`
	LateP99         Spread `json:"tick_late_p99_ms"`
	TickP99         Spread `json:"tick_p99_ms"`
	Overruns        Spread `json:"overruns"`
	Skipped         Spread `json:"skipped"`
	ShedTicks       Spread `json:"shed_ticks"` // handsup: ticks of a phase's rooms run while shedding load
}

// RunStats is one sender's measured window.
type RunStats struct {
	Kind      string  `json:"kind"`
	Listeners int     `json:"listeners"` // per room
	Rooms     int     `json:"rooms"`
	Repeat    int     `json:"repeat"`
	WindowS   float64 `json:"window_s"`

	CPUPct       float64 `json:"cpu_pct"`           // the sender process's CPU time, % of one core
	CPUusPerPkt  float64 `json:"cpu_us_per_packet"` // the sender's CPU time per RTP datagram it sent
	ClientCPUPct float64 `json:"client_cpu_pct"`    // the client's (receivers and speakers), % of one core

	Sent     uint64  `json:"sent"`     // RTP datagrams the sender sent (handsup: the speakers' streams too)
	Received uint64  `json:"received"` // RTP datagrams the listeners received
	Expected uint64  `json:"expected"` // per listener: its first to last sequence number, plus skipped ticks
	RTCP     uint64  `json:"rtcp"`     // RTCP packets the listeners received (sender reports)
	Stray    uint64  `json:"stray"`    // datagrams to no listener
	Silent   int     `json:"silent"`   // listeners that received nothing
	Datagram float64 `json:"datagram_bytes"`

	PerListenerPerS float64 `json:"per_listener_per_s"` // RTP packets per listener per second (50: all)
	DeliveredPct    float64 `json:"delivered_pct"`      // Received / Expected
	Under98Pct      float64 `json:"under_98_pct"`       // listeners with under 98% of their packets
	Under999Pct     float64 `json:"under_999_pct"`      // listeners with under 99.9%

	InterArrivalP99 float64 `json:"inter_arrival_p99_ms"` // between a listener's packets, kernel receive times
	InterArrivalMax float64 `json:"inter_arrival_max_ms"`
	TickP99         float64 `json:"tick_p99_ms"` // a tick's work (the floor: its sends)
	TickMax         float64 `json:"tick_max_ms"`
	LateP99         float64 `json:"tick_late_p99_ms"` // how late ticks started against the 20 ms grid
	LateMax         float64 `json:"tick_late_max_ms"`
	Ticks           uint64  `json:"ticks"`
	DecodesPerTick  float64 `json:"decodes_per_tick,omitempty"` // handsup: libopus calls per tick run
	EncodesPerTick  float64 `json:"encodes_per_tick,omitempty"`
	// Handsup: its speakers' jitter buffers over the window. Their links
	// are loopback, without jitter or loss: what they conceal, and any
	// target above the 20 ms floor, the server's own timing caused.
	SpeakerConcealments uint64  `json:"speaker_concealments,omitempty"` // concealment events
	SpeakerTargetMs     float64 `json:"speaker_target_ms,omitempty"`    // mean target delay over the audio played
	SpeakerDelayMs      float64 `json:"speaker_delay_ms,omitempty"`     // mean time a packet spent in the buffer
	// Handsup: the wall time of its rooms' ticks over the window, in % of
	// a core, by part (engine.Counters.BuildTime, EncodeTime, SendTime),
	// and the build's time per listener and room tick (the room's fixed
	// part, its decodes and mix, included).
	BuildPct           float64 `json:"build_pct,omitempty"`
	EncodePct          float64 `json:"encode_pct,omitempty"`
	SendPct            float64 `json:"send_pct,omitempty"`
	BuildNsPerListener float64 `json:"build_ns_per_listener,omitempty"`
	// Handsup: room ticks whose sends ran in parts on several workers
	// (engine.Counters.SplitSends).
	SplitSends uint64 `json:"split_sends"`
	Overruns   uint64 `json:"overruns"`
	Skipped    uint64 `json:"skipped"`
	// Handsup: ticks of a phase's rooms run while the engine shed load
	// (engine.Config.Shed), and the times it started.
	ShedTicks  uint64 `json:"shed_ticks"`
	ShedSpells uint64 `json:"shed_spells"`

	// Where packets were lost.
	SendErrors   uint64 `json:"send_errors"`
	SendCalls    uint64 `json:"send_calls"`    // sendmmsg calls
	RxqOverflow  uint64 `json:"rxq_overflow"`  // dropped at the receivers' sockets (SO_RXQ_OVFL)
	RcvbufErrors uint64 `json:"rcvbuf_errors"` // /proc/net/snmp, machine-wide
	SndbufErrors uint64 `json:"sndbuf_errors"`
	InErrors     uint64 `json:"in_errors"`

	// The machine's stalls in the window: wake-ups of a client thread
	// sleeping 2 ms at a time that came over 10 ms late (stall_linux.go),
	// how many, the time they lost in all and the longest.
	Stalls     int     `json:"stalls"`
	StalledMs  float64 `json:"stalled_ms"`
	StallMaxMs float64 `json:"stall_max_ms"`

	// The sender's garbage collections in the window.
	GCCycles uint64 `json:"gc_cycles"`

	SndBuf int    `json:"sndbuf"` // granted to the sender's socket
	RcvBuf int    `json:"rcvbuf"`
	Joins  *Joins `json:"joins,omitempty"`
}

// Passes reports whether a run delivered ≥ 99.9% of packets to ≥ 99% of
// listeners.
func (r RunStats) Passes() bool { return r.Under999Pct <= 1 }
