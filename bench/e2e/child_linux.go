package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/handsup-audio/handsup/bench/capacity"
	"github.com/handsup-audio/handsup/engine"
)

// The benchmark's senders run in processes of their own, so that their
// CPU time (getrusage) is theirs alone: the handsup server (engine,
// session layer and rtpudp, wired as cmd/handsup wires them) and the bare
// sendmmsg floor. The parent starts the same executable with childEnv set
// to the role; the child reads its childConfig as the first line of stdin,
// then answers each "mark" line with a report on stdout, and exits when
// stdin closes.

// childEnv names the child's role in its environment.
const childEnv = "HANDSUP_E2E_CHILD"

// childConfig is what a child sends.
type childConfig struct {
	Role      string   `json:"role"`      // roleServer, roleFloor or roleCodec
	Listeners int      `json:"listeners"` // per room
	Rooms     int      `json:"rooms"`     // server: rooms, each with len(Speakers)/Rooms speakers
	Ports     []int    `json:"ports"`     // the receivers' ports (listenerAddr)
	Speakers  []string `json:"speakers"`  // server: the speakers' addresses
	PerRoom   int      `json:"per_room"`  // codec: speakers per room
	Talking   int      `json:"talking"`   // codec: talking speakers per room
	Workers   int      `json:"workers"`   // server: engine workers
	Procs     int      `json:"procs"`     // GOMAXPROCS; 0: Go's default
	JoinRate  float64  `json:"join_rate"`
	SendSplit int      `json:"send_split"` // server: engine.RoomConfig.SendSplit
	Phases    int      `json:"phases"`     // server: engine.Config.Phases
	Shed      int      `json:"shed"`       // server: engine.Config.Shed.Complexity, -1 off
	Datagram  int      `json:"datagram"`   // floor: bytes per datagram
	Reader    bool     `json:"reader"`     // floor: a goroutine parked reading its socket
	Fragment  bool     `json:"fragment"`   // floor: no don't-fragment bit (Config.FloorFragmentable)
	Profile   string   `json:"profile"`    // CPU profile of the window (first mark to second)
}

const (
	roleServer = "server"
	roleFloor  = "floor"
	roleCodec  = "codec" // the codec floor: says "codec" and exits
)

// report is what a child says: that it is ready (with its RTP address),
// that its listeners joined, or, at a mark, its counters so far and its
// ticks since the previous mark.
type report struct {
	Event string `json:"event"` // "ready", "joined", "mark", "codec", "error"
	Err   string `json:"err,omitempty"`
	RTP   string `json:"rtp,omitempty"`

	CPU                      time.Duration `json:"cpu_ns"`
	Ticks, Overruns, Skipped uint64
	ShedTicks, ShedSpells    uint64  // server: engine.Stats'
	Sent, SendErrors, Calls  uint64  // RTP datagrams, send errors, sendmmsg calls
	Bytes                    uint64  // RTP bytes sent
	Decodes, Encodes         uint64  // server: libopus calls so far
	TickP99, TickMax         float64 // ms: a tick's work (the floor: its sends)
	LateP99, LateMax         float64 // ms: how late ticks started
	SndBuf, RcvBuf           int     // granted to its RTP socket
	Joins                    *Joins  `json:",omitempty"`
	DecodeUS, EncodeUS       float64 // codec: libopus CPU µs per call
	// Server: its speakers' jitter buffers so far (jitter.Stats, summed):
	// concealment events, and samples played with the sum over them of
	// the target delay and of the delay in the buffer, in seconds.
	Concealments             uint64
	Emitted, TargetS, DelayS float64
	// Server: its rooms' tick work so far (engine.Counters.BuildTime,
	// EncodeTime, SendTime, in ns) and their ticks summed over rooms.
	BuildNS, EncodeNS, SendNS int64
	RoomTicks                 uint64
	SplitSends                uint64 // engine.Counters.SplitSends
	GCCycles                  uint64 // the Go runtime's garbage collections so far
}

// Joins is how the listeners' joins went.
type Joins struct {
	Count    int     `json:"count"`
	Seconds  float64 `json:"seconds"` // from the first join to the last
	P50Ms    float64 `json:"p50_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MaxMs    float64 `json:"max_ms"`
	Skipped  uint64  `json:"skipped_ticks"` // while they joined
	Overruns uint64  `json:"overruns"`
}

// ChildMain runs this process as a benchmark child when the environment
// says so, and exits; otherwise it returns at once. Call it first thing in
// main (cmd/handsup-bench does) and in TestMain of tests that run Run.
func ChildMain() {
	role := os.Getenv(childEnv)
	if role == "" {
		return
	}
	os.Exit(runChild(role, os.Stdin, os.Stdout))
}

func runChild(role string, in io.Reader, out io.Writer) int {
	lines := bufio.NewScanner(in)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	enc := json.NewEncoder(out)
	fail := func(err error) int {
		_ = enc.Encode(report{Event: "error", Err: err.Error()})
		return 1
	}
	if !lines.Scan() {
		return fail(fmt.Errorf("no config on stdin"))
	}
	var cfg childConfig
	if err := json.Unmarshal(lines.Bytes(), &cfg); err != nil {
		return fail(err)
	}
	if cfg.Procs > 0 {
		runtime.GOMAXPROCS(cfg.Procs)
	}
	if role == roleCodec {
		decUS, encUS, err := capacity.CodecCost(context.Background(), capacity.Config{
			// Seed 1: speaker g talks signal.NewVoice(1+g), as the
			// client's speakers do (newSpeakers).
			Rooms: cfg.Rooms, Speakers: cfg.PerRoom, Active: cfg.Talking, Workers: cfg.Workers, Seed: 1,
		})
		if err != nil {
			return fail(err)
		}
		_ = enc.Encode(report{Event: "codec", DecodeUS: decUS, EncodeUS: encUS})
		return 0
	}
	var s sender
	var err error
	switch role {
	case roleServer:
		s, err = startServer(cfg, func(r report) { _ = enc.Encode(r) })
	case roleFloor:
		s, err = startFloor(cfg, func(r report) { _ = enc.Encode(r) })
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		return fail(err)
	}
	defer s.close()
	marks := 0
	for lines.Scan() {
		if lines.Text() != "mark" {
			continue
		}
		marks++
		if cfg.Profile != "" && marks <= 2 {
			if err := profile(cfg.Profile, marks == 1); err != nil {
				return fail(err)
			}
		}
		r := s.mark()
		r.Event, r.CPU, r.GCCycles = "mark", processCPU(), gcCycles()
		_ = enc.Encode(r)
	}
	return 0
}

// sender is a child's sending side.
type sender interface {
	mark() report
	close()
}

var profileFile *os.File

// profile starts (or stops) the CPU profile of the window.
func profile(path string, start bool) error {
	if !start {
		pprof.StopCPUProfile()
		return profileFile.Close()
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	profileFile = f
	return pprof.StartCPUProfile(f)
}

// tickLog times a child's ticks: their work and how late they started
// against a 20 ms grid, since the previous mark.
type tickLog struct {
	mu         sync.Mutex
	work, late *histogram
	next       time.Time // when the next tick is due
}

func newTickLog() *tickLog {
	return &tickLog{work: newHistogram(50*time.Microsecond, 40000), late: newHistogram(50*time.Microsecond, 40000)}
}

// add logs a tick that started at start and took took, its lateness
// against the log's own 20 ms grid (the floor's). The grid follows the
// engine's (engine.Run): a tick more than catchUp behind moves it on.
func (l *tickLog) add(start time.Time, took time.Duration) {
	const period, catchUp = 20 * time.Millisecond, 100 * time.Millisecond
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.next.IsZero() {
		l.next = start
	}
	l.work.add(took)
	l.late.add(start.Sub(l.next))
	l.next = l.next.Add(period)
	if behind := start.Sub(l.next); behind > catchUp {
		l.next = l.next.Add(behind / period * period)
	}
}

// addTick logs a tick of an engine phase's rooms, late against its
// phase's grid as the engine says (the server's: engine.Config.OnTick).
func (l *tickLog) addTick(t engine.TickTime) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.work.add(t.Took)
	l.late.add(t.Late)
}

// fill puts the ticks since the last call in r, and starts afresh.
func (l *tickLog) fill(r *report) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r.TickP99, r.TickMax = ms(l.work.quantile(0.99)), ms(l.work.max)
	r.LateP99, r.LateMax = ms(l.late.quantile(0.99)), ms(l.late.max)
	l.work.reset()
	l.late.reset()
}

// gcCycles is how many garbage collections this process has run.
func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
