package quality

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/bench/impair"
	"github.com/handsup-audio/handsup/bench/internal/sim"
	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/internal/fakeclock"
	"github.com/handsup-audio/handsup/jitter"
	"github.com/handsup-audio/handsup/mixer"
	"github.com/handsup-audio/handsup/red"
)

// The simulation behind Run: one room on a simulated clock, its
// clients sending and receiving through impair links, every event run in
// time order on one goroutine.

const (
	opusPT     = 111
	redPT      = 63 // RED (RFC 2198) payload type of the listeners that take it
	sampleRate = codec.SampleRate
	frameLen   = codec.FrameSamples
	tick       = engine.TickInterval
)

// simEpoch is simulated time zero; any fixed instant does.
var simEpoch = time.Unix(1_700_000_000, 0)

func at(d time.Duration) time.Time  { return simEpoch.Add(d) }
func samplesAt(d time.Duration) int { return signal.Samples(d) }
func samplesToMs(n int) float64     { return float64(n) * 1000 / sampleRate }
func durMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pct is part/whole in percent; 0 when whole is 0.
func pct(part, whole float64) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * part / whole
}

// extendSeq extends a 16-bit sequence number to the one nearest last.
func extendSeq(last int64, seq uint16) int64 { return last + int64(int16(seq-uint16(last))) }

// Event kinds, in the order they run when due at the same instant: a
// packet sent at t on a perfect link arrives at t, before the tick at t
// reads it, and a listener plays what arrived at its pop's instant.
const (
	evSend = iota
	evUplink
	evTick
	evDownlink
	evPop
	evReport
)

// simRun is one run of a scenario: the impaired one, or its clean
// reference (every link a perfect wire).
type simRun struct {
	sc        *Scenario
	clean     bool
	clock     *fakeclock.Clock // the run's simulated time, read by the engine as Config.Now
	eng       *engine.Engine
	room      *engine.Room
	speakers  []*simSpeaker
	listeners []*simListener
	ticks     int // engine ticks run
	samples   int // length of the PCM timelines
}

// arrival is one packet delivered on an uplink, for the delay statistics.
type arrival struct {
	at      time.Duration // simulated arrival time
	transit time.Duration // arrival minus the packet's media time
}

// simSpeaker is a speaking client: its source, encoder, RTP sender and
// uplink, and what the run learns about its stream in the engine.
type simSpeaker struct {
	spec    *SpeakerSpec
	atTick  bool     // packets wait in pending for the next tick (not Scenario.ReadOnArrival)
	pending [][]byte // arrived, not yet read
	p       *engine.Participant
	enc     *codec.Encoder
	src     signal.Generator
	link    *impair.Link
	phase   time.Duration
	period  float64 // its 20 ms in simulated ns: skew shortens or stretches it
	n       int     // frames captured
	next    time.Duration

	ssrc        uint32
	seq         uint16
	ts, firstTS uint32
	marker      bool
	inDTX       bool
	sinceSent   int
	pcm         [frameLen]int16
	pkt         [12 + codec.MaxPacketBytes]byte
	mouth       []int16 // what it said, on the simulated timeline
	// What it sent: its packets decoded (the lost and late ones too), on
	// the same timeline, by a decoder of its own; nil when it says nothing.
	decoded []int16
	dec     *codec.Decoder
	// Per packet sent: it carried LBRR (in-band FEC), it arrived, its
	// frame was speech (above -50 dBov).
	lbrr, delivered, speech []bool
	arrivals                []arrival

	// Where each frame it captured starts on the simulated timeline (its
	// timestamp is firstTS plus 960 per frame before it).
	frameAt []int

	// Sampled after every tick: the engine's jitter buffer for this speaker.
	target, level []time.Duration
	concealed     signal.Concealments
	perSecond     []jitter.Stats // after the tick ending each simulated second
	final         jitter.Stats
}

// simListener is a listening client: its downlink, its own player (jitter
// buffer and decoder), its receiver reports, and the checks of the stream
// the engine sends it.
type simListener struct {
	spec   *ListenerSpec
	p      *engine.Participant
	link   *impair.Link
	player *jitter.Player
	phase  time.Duration
	pops   int
	report int           // reports sent
	rtt    time.Duration // the round trip its reports give: twice the link's delay

	heard []int16 // what it played, on the simulated timeline
	frame [frameLen]int16

	pkt     rtp.Packet
	red     red.Unwrapper
	sendBuf []byte

	// At the engine's side of the downlink: the stream's continuity.
	sent     uint64
	haveLast bool
	lastSeq  uint16
	lastTS   uint32
	lastSSRC uint32
	breaks   int

	// Receiver-report state (RFC 3550 §6.4.1), from the packets received,
	// before any recovery.
	haveSeq        bool
	highSeq        int64
	received       uint64
	priorHigh      int64
	priorReceived  uint64
	reportedLosses []float64

	// What it played, in samples.
	started                             bool
	decoded, fec, concealed, decodeErrs uint64
	silenceAfterStart                   uint64
	redRecovered                        uint64
	changes                             []TierChange
	finalTier                           int
}

// newSimRun builds the room and its clients. The clean reference gets the
// same seeds, voices and phases, with every link perfect.
func newSimRun(sc *Scenario, clean bool) (*simRun, error) {
	r := &simRun{sc: sc, clean: clean, samples: samplesAt(sc.Duration) + 2*frameLen}
	r.clock = fakeclock.New(simEpoch)
	r.eng = engine.New(engine.Config{Now: r.clock.Now, Workers: 1})
	room, err := r.eng.NewRoom(sc.Name, sc.Room)
	if err != nil {
		r.eng.Close()
		return nil, err
	}
	r.room = room
	rng := sim.SplitMix(sc.Seed ^ 0x5eed)
	frames := int(sc.Duration/tick) + 2
	for i := range sc.Speakers {
		spec := &sc.Speakers[i]
		enc, err := codec.NewEncoder(spec.Encoder)
		if err != nil {
			r.eng.Close()
			return nil, err
		}
		s := &simSpeaker{
			spec: spec, enc: enc, atTick: !sc.ReadOnArrival,
			phase:  time.Duration(rng() % uint64(tick)),
			period: float64(tick) * (1 - spec.Skew),
			ssrc:   uint32(rng()) | 1, seq: uint16(rng()), ts: uint32(rng()), marker: true,
			mouth: make([]int16, r.samples),
			lbrr:  make([]bool, 0, frames), delivered: make([]bool, 0, frames), speech: make([]bool, 0, frames),
			target: make([]time.Duration, 0, frames), level: make([]time.Duration, 0, frames),
		}
		s.firstTS = s.ts
		s.next = s.phase
		if spec.Source != nil {
			s.src = spec.Source(sc.Seed + uint64(i))
			if s.dec, err = codec.NewDecoder(); err != nil {
				r.eng.Close()
				return nil, err
			}
			s.decoded = make([]int16, r.samples)
		}
		s.link = impair.New(r.linkConfig(spec.Uplink, 2*uint64(i)))
		s.link.SetEpoch(simEpoch)
		if s.p, err = room.Join(speakerID(spec, i), engine.ParticipantConfig{
			Role: engine.Speaker, PayloadType: opusPT, SSRC: uint32(rng()) | 1,
		}); err != nil {
			r.eng.Close()
			return nil, err
		}
		r.speakers = append(r.speakers, s)
	}
	for i := range sc.Listeners {
		spec := &sc.Listeners[i]
		player, err := jitter.NewPlayer(jitter.PlayerConfig{})
		if err != nil {
			r.eng.Close()
			return nil, err
		}
		l := &simListener{
			spec: spec, player: player,
			phase: time.Duration(rng() % uint64(tick)),
			heard: make([]int16, r.samples),
		}
		down := r.linkConfig(spec.Downlink, 2*uint64(i)+1)
		l.link, l.rtt = impair.New(down), 2*down.Delay
		l.link.SetEpoch(simEpoch)
		cfg := engine.ParticipantConfig{Role: engine.Listener, PayloadType: opusPT, SSRC: uint32(rng()) | 1,
			Sink: engine.SinkFunc(func(header, payload []byte) error { l.send(r.clock, header, payload); return nil })}
		if spec.RED {
			cfg.REDPayloadType = redPT
		}
		if l.p, err = room.Join(listenerID(spec, i), cfg); err != nil {
			r.eng.Close()
			return nil, err
		}
		r.listeners = append(r.listeners, l)
	}
	return r, nil
}

func speakerID(s *SpeakerSpec, i int) string {
	if s.Name != "" {
		return s.Name
	}
	return fmt.Sprintf("speaker-%d", i)
}

func listenerID(l *ListenerSpec, i int) string {
	if l.Name != "" {
		return l.Name
	}
	return fmt.Sprintf("listener-%d", i)
}

// linkConfig is a link's impairment in this run, seeded per link; the
// clean reference's links are perfect wires.
func (r *simRun) linkConfig(cfg impair.Config, stream uint64) impair.Config {
	if r.clean {
		cfg = impair.Config{}
	}
	cfg.Burst = cloneBurst(cfg.Burst)
	cfg.Seed = sim.SplitMix(r.sc.Seed ^ 0x11c0 ^ stream<<16)()
	return cfg
}

func cloneBurst(g *impair.GilbertElliott) *impair.GilbertElliott {
	if g == nil {
		return nil
	}
	c := *g
	return &c
}

// run plays the scenario out: speakers' sends, link deliveries, engine
// ticks, listeners' pops and reports, in simulated time order.
func (r *simRun) run(ctx context.Context) error {
	defer r.eng.Close()
	end := r.sc.Duration
	nextTick := tick
	for {
		t, kind, who := end+1, 0, 0
		take := func(at time.Duration, k, i int) {
			if at < t || at == t && k < kind {
				t, kind, who = at, k, i
			}
		}
		for i, s := range r.speakers {
			take(s.next, evSend, i)
			if a, ok := s.link.Next(); ok {
				take(a.Sub(simEpoch), evUplink, i)
			}
		}
		take(nextTick, evTick, 0)
		for i, l := range r.listeners {
			if a, ok := l.link.Next(); ok {
				take(a.Sub(simEpoch), evDownlink, i)
			}
			take(l.phase+time.Duration(l.pops)*tick, evPop, i)
			take(l.phase+time.Duration(l.report+1)*time.Second, evReport, i)
		}
		if t > end {
			r.finish()
			return nil
		}
		r.clock.Set(at(t))
		switch kind {
		case evSend:
			r.speakers[who].send(t)
		case evUplink:
			s := r.speakers[who]
			s.link.Deliver(at(t), func(pkt []byte, a time.Time) { s.arrive(pkt, a.Sub(simEpoch)) })
		case evTick:
			for _, s := range r.speakers {
				s.read()
			}
			r.eng.Tick()
			r.ticks++
			nextTick += tick
			if r.sc.Progress != nil && r.ticks%50 == 0 {
				r.sc.Progress(time.Second)
			}
			r.afterTick()
			if r.ticks%50 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
		case evDownlink:
			l := r.listeners[who]
			l.link.Deliver(at(t), func(pkt []byte, a time.Time) { l.receive(pkt, a) })
		case evPop:
			r.listeners[who].pop(r.clock.Now())
		case evReport:
			r.listeners[who].sendReport(t)
		}
	}
}

// finish takes the final statistics while the engine still runs.
func (r *simRun) finish() {
	for _, s := range r.speakers {
		if st := s.p.Stats(); st.Jitter != nil {
			s.final = *st.Jitter
		}
		// Packets still in flight were not lost: mark them for the FEC
		// availability figures, without handing them to the engine.
		s.link.Deliver(at(math.MaxInt64), func(pkt []byte, _ time.Time) {
			if len(pkt) >= 12 {
				s.markDelivered(binary.BigEndian.Uint16(pkt[2:]))
			}
		})
	}
	for _, l := range r.listeners {
		l.finalTier = l.p.Tier()
	}
}

// afterTick samples each speaker's jitter buffer in the engine.
func (r *simRun) afterTick() {
	for _, s := range r.speakers {
		st := s.p.Stats()
		if st.Jitter == nil {
			continue
		}
		s.target = append(s.target, st.Jitter.TargetDelay)
		// The level the buffer steers: a Player's playout level while it
		// plays (its occupancy runs a frame or two under it, and to zero
		// in a DTX pause), the occupancy otherwise.
		level := st.Jitter.BufferLevel
		if st.Jitter.PlayoutLevel > 0 {
			level = st.Jitter.PlayoutLevel
		}
		s.level = append(s.level, level)
		s.concealed.Observe(st.Jitter.ConcealedSamples, st.Jitter.LastConcealedTimestamp)
		if r.ticks%50 == 0 {
			s.perSecond = append(s.perSecond, *st.Jitter)
		}
	}
}

// dtxKeepAliveFrames: a sender in DTX sends one ≤2-byte packet every
// 400 ms, as WebRTC does (as capacity's clients do).
var dtxKeepAliveFrames = sim.DTXKeepAlive

// send captures the speaker's next 20 ms, encodes it and sends it up its
// link, unless it is a DTX frame the sender skips.
func (s *simSpeaker) send(now time.Duration) {
	if s.src != nil {
		s.src.Fill(s.pcm[:])
	} else {
		clear(s.pcm[:])
	}
	// The frame is the 20 ms of the sender's clock before now.
	startAt := samplesAt(now) - frameLen
	for i, v := range s.pcm {
		if j := startAt + i; j >= 0 && j < len(s.mouth) {
			s.mouth[j] = v
		}
	}
	s.n++
	s.next = s.phase + time.Duration(float64(s.n)*s.period)
	s.frameAt = append(s.frameAt, startAt)

	n, err := s.enc.Encode(s.pcm[:], s.pkt[12:])
	if err != nil {
		n = 0
	}
	payload := s.pkt[12 : 12+n]
	s.noteSent(payload, startAt)
	ts := s.ts
	s.ts += frameLen
	if n == 0 {
		s.marker = true
		return
	}
	send := true
	if codec.IsDTX(payload) {
		send = !s.inDTX || s.sinceSent+1 >= dtxKeepAliveFrames
		s.inDTX = true
	} else {
		s.inDTX = false
	}
	if !send {
		s.sinceSent++
		s.marker = true
		return
	}
	s.sinceSent = 0
	sim.PutRTPHeader(s.pkt[:12], opusPT, s.marker, s.seq, ts, s.ssrc)
	s.marker = false
	s.seq++
	s.lbrr = append(s.lbrr, codec.HasFEC(payload))
	s.delivered = append(s.delivered, false)
	s.speech = append(s.speech, mixer.Level(s.pcm[:]) < mixer.QuietLevel)
	s.link.Send(s.pkt[:12+n], at(now))
}

// concealedAt places the frames the engine's buffer concealed for this
// speaker on the simulated timeline, where the frames they stood in for
// were captured.
func (s *simSpeaker) concealedAt() []int {
	var at []int
	for _, off := range s.concealed.Offsets(s.firstTS) {
		if k := off / frameLen; off >= 0 && k < len(s.frameAt) {
			at = append(at, s.frameAt[k]+off%frameLen)
		}
	}
	return at
}

// noteSent decodes a packet the speaker encoded, sent or not, into
// decoded at sample at.
func (s *simSpeaker) noteSent(payload []byte, at int) {
	if s.decoded == nil || len(payload) == 0 {
		return
	}
	var pcm [codec.MaxFrameSamples]int16
	n, err := s.dec.Decode(payload, pcm[:])
	if err != nil {
		return
	}
	for i, v := range pcm[:n] {
		if j := at + i; j >= 0 && j < len(s.decoded) {
			s.decoded[j] = v
		}
	}
}

// arrive hands a packet the uplink delivered to the engine, at its
// arrival time (the clock already reads it).
func (s *simSpeaker) arrive(pkt []byte, a time.Duration) {
	if len(pkt) >= 12 {
		s.markDelivered(binary.BigEndian.Uint16(pkt[2:]))
		ts := binary.BigEndian.Uint32(pkt[4:])
		media := time.Duration(int64(int32(ts-s.firstTS))) * time.Second / sampleRate
		s.arrivals = append(s.arrivals, arrival{at: a, transit: a - media})
	}
	if s.atTick {
		s.pending = append(s.pending, append([]byte(nil), pkt...))
		return
	}
	_ = s.p.WriteRTP(pkt)
}

// read hands the engine what arrived since the last tick, as the server's
// Drain does at the start of each tick.
func (s *simSpeaker) read() {
	for i, pkt := range s.pending {
		_ = s.p.WriteRTP(pkt)
		s.pending[i] = nil
	}
	s.pending = s.pending[:0]
}

// markDelivered notes that the packet with sequence number seq arrived.
func (s *simSpeaker) markDelivered(seq uint16) {
	if i := len(s.delivered) - 1 - int(uint16(s.seq-1-seq)); i >= 0 {
		s.delivered[i] = true
	}
}

// send is the listener's sink: it checks the stream's continuity at the
// engine's side and puts a copy of the packet on the downlink (the payload
// is only valid for a while).
func (l *simListener) send(c *fakeclock.Clock, header, payload []byte) {
	seq := binary.BigEndian.Uint16(header[2:])
	ts := binary.BigEndian.Uint32(header[4:])
	ssrc := binary.BigEndian.Uint32(header[8:])
	if l.haveLast && (seq != l.lastSeq+1 || ts != l.lastTS+frameLen || ssrc != l.lastSSRC) {
		l.breaks++
	}
	l.haveLast, l.lastSeq, l.lastTS, l.lastSSRC = true, seq, ts, ssrc
	l.sent++
	l.sendBuf = append(append(l.sendBuf[:0], header...), payload...)
	l.link.Send(l.sendBuf, c.Now())
}

// receive takes a packet off the downlink into the listener's jitter
// buffer; a RED packet's redundant blocks go first, as the packets they
// copy, exactly as the engine unwraps a speaker's RED.
func (l *simListener) receive(buf []byte, arrival time.Time) {
	if err := l.pkt.Unmarshal(buf); err != nil {
		return
	}
	if !l.haveSeq {
		l.haveSeq = true
		l.highSeq = int64(l.pkt.SequenceNumber)
		l.priorHigh = l.highSeq - 1
	} else {
		l.highSeq = max(l.highSeq, extendSeq(l.highSeq, l.pkt.SequenceNumber))
	}
	l.received++
	jb := l.player.Buffer()
	if l.pkt.PayloadType == redPT {
		copies, err := l.red.Unwrap(&l.pkt, opusPT)
		if err != nil {
			return
		}
		for i := range copies {
			if jb.Push(&copies[i], arrival) == jitter.Accepted {
				l.redRecovered++
			}
		}
	}
	jb.Push(&l.pkt, arrival)
}

// pop plays the listener's next 20 ms, as the engine plays a speaker's,
// and counts what it played.
func (l *simListener) pop(now time.Time) {
	pl := l.player.Next(now, l.frame[:])
	from := samplesAt(l.phase) + l.pops*frameLen
	if from+frameLen <= len(l.heard) {
		copy(l.heard[from:], l.frame[:])
	}
	// As the engine does for a speaker: drift corrections wait for quiet.
	l.player.Buffer().MarkQuiet(mixer.Level(l.frame[:]) >= mixer.QuietLevel)
	l.pops++

	l.started = l.started || pl.Decoded > 0
	l.decoded += uint64(pl.DecodedSamples)
	l.fec += uint64(pl.RecoveredSamples)
	l.concealed += uint64(pl.ConcealedSamples)
	l.decodeErrs += uint64(pl.FailedSamples)
	if l.started {
		// Silence before the first decode cannot share a pop with it: the
		// buffer answers a whole tick of silence until it starts.
		l.silenceAfterStart += uint64(pl.SilentSamples)
	}
}

// sendReport is the listener's receiver report of the last second: the
// fraction lost from sequence numbers expected and received (before any
// recovery), the jitter buffer's interarrival jitter, the link's round
// trip. The engine's tier logic takes it as it takes RTCP.
func (l *simListener) sendReport(now time.Duration) {
	l.report++
	var frac float64
	if l.haveSeq {
		expected := l.highSeq - l.priorHigh
		got := int64(l.received - l.priorReceived)
		if expected > 0 && got < expected {
			frac = float64(expected-got) / float64(expected)
		}
		l.priorHigh, l.priorReceived = l.highSeq, l.received
	}
	l.reportedLosses = append(l.reportedLosses, frac)
	st := l.player.Buffer().Stats()
	tier, changed := l.p.ReportReception(engine.Reception{
		FractionLost: frac,
		Jitter:       time.Duration(st.Jitter * float64(time.Second)),
		RTT:          l.rtt,
	})
	if changed {
		l.changes = append(l.changes, TierChange{AtS: sim.Round(now.Seconds(), 3), Tier: tier})
	}
}

// relativeDelays are the arrivals' delays relative to the fastest packet
// of the two seconds before each (NetEQ's measure, as jitter.Buffer
// computes it), for arrivals in [from, to).
func relativeDelays(arr []arrival, from, to time.Duration) []time.Duration {
	var out []time.Duration
	for i, a := range arr {
		fastest := a.transit
		for j := i - 1; j >= 0 && a.at-arr[j].at <= 2*time.Second; j-- {
			fastest = min(fastest, arr[j].transit)
		}
		if a.at >= from && a.at < to {
			out = append(out, a.transit-fastest)
		}
	}
	return out
}

// durPercentile is the nearest-rank q-quantile in ms; NaN for no data.
func durPercentile(d []time.Duration, q float64) float64 {
	if len(d) == 0 {
		return math.NaN()
	}
	return durMs(sim.Percentile(d, q))
}
