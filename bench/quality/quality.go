package quality

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/handsup-audio/handsup/bench/impair"
	"github.com/handsup-audio/handsup/bench/internal/sim"
	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/engine"
)

// Scenario is one listening-quality simulation: a room on a simulated
// clock, speakers sending through their own uplinks and listeners
// receiving through their own downlinks (bench/impair links), run twice,
// impaired and with every link clean, so each listener's audio can be
// compared with what it would have heard on a perfect network.
type Scenario struct {
	Name        string
	Description string
	Profile     string        // the impairment, for reports: a profile name or a short description
	Duration    time.Duration // simulated
	Seed        uint64        // voices come from Speaker sources; phases, SSRCs, sequence numbers and links from Seed
	Room        engine.RoomConfig
	Speakers    []SpeakerSpec
	Listeners   []ListenerSpec
	// Progress, if set, hears each simulated second that a run of the
	// scenario (the impaired one, and its clean reference) goes through:
	// SimulatedTotal in all. It is called from the runs' goroutines and
	// must be quick and safe for concurrent use. Default none.
	Progress func(simulated time.Duration)
	// ReadOnArrival hands each uplink packet to the engine the moment it
	// arrives, as a transport reading datagrams as they come does (WebRTC,
	// rtpudp without ReadOnDrain). Default false: at the start of the next
	// tick, as the server's plain-RTP transport reads them
	// (rtpudp.Config.ReadOnDrain, Drain as engine.Config.BeforeTick).
	ReadOnArrival bool

	// checks computes the scenario's acceptance targets from the result
	// and the impaired run's traces.
	checks func(res *Result, imp *simRun) []Check
}

// SpeakerSpec is one simulated speaking client.
type SpeakerSpec struct {
	Name    string              // participant id; default speaker-N
	Encoder codec.EncoderConfig // the client's Opus encoder
	// Source makes what the speaker says, afresh for each run (the
	// impaired one and its clean reference must hear the same), from the
	// scenario's Seed plus the speaker's index; nil is digital silence
	// (give the encoder DTX, as a muted client would).
	Source func(seed uint64) signal.Generator
	// Skew is the sender's clock error: +0.005 runs 0.5% fast, its 20 ms
	// lasting (1−Skew)·20 ms of simulated time.
	Skew       float64
	Uplink     impair.Config // Seed is set per link from Scenario.Seed
	UplinkName string        // the uplink's profile, for reports
}

// ListenerSpec is one simulated listening client.
type ListenerSpec struct {
	Name         string // participant id; default listener-N
	RED          bool   // takes RED (RFC 2198, payload type 63)
	Downlink     impair.Config
	DownlinkName string
}

// Validate reports a scenario Run cannot run.
func (sc *Scenario) Validate() error {
	switch {
	case sc.Duration < time.Second:
		return fmt.Errorf("quality: scenario %q: duration %v, want at least 1s", sc.Name, sc.Duration)
	case len(sc.Speakers) == 0:
		return fmt.Errorf("quality: scenario %q has no speakers", sc.Name)
	case len(sc.Listeners) == 0:
		return fmt.Errorf("quality: scenario %q has no listeners", sc.Name)
	}
	for _, s := range sc.Speakers {
		if math.Abs(s.Skew) >= 0.5 {
			return fmt.Errorf("quality: scenario %q: skew %g out of range", sc.Name, s.Skew)
		}
	}
	return nil
}

// clean reports whether every link of the scenario is a perfect wire.
// SimulatedTotal is the simulated time Run goes through for sc: its
// Duration, twice when a link is impaired (the clean reference runs too).
func (sc *Scenario) SimulatedTotal() time.Duration {
	if sc.clean() {
		return sc.Duration
	}
	return 2 * sc.Duration
}

func (sc *Scenario) clean() bool {
	perfect := func(c impair.Config) bool {
		c.Seed, c.Start, c.Stop = 0, 0, 0
		return c == impair.Config{}
	}
	for _, s := range sc.Speakers {
		if !perfect(s.Uplink) {
			return false
		}
	}
	for _, l := range sc.Listeners {
		if !perfect(l.Downlink) {
			return false
		}
	}
	return true
}

// Result is what Run measured.
type Result struct {
	Scenario  string            `json:"scenario"`
	Profile   string            `json:"profile"`
	DurationS float64           `json:"duration_s"`
	Seed      uint64            `json:"seed"`
	Speakers  []SpeakerQuality  `json:"speakers"`
	Listeners []ListenerQuality `json:"listeners"`
	Checks    []Check           `json:"checks,omitempty"`
	WallS     float64           `json:"wall_s"` // both runs and the comparison
}

// SpeakerQuality is one speaker's uplink as the engine received it: its
// jitter buffer's statistics (W3C names) in the impaired run.
type SpeakerQuality struct {
	Name        string `json:"name"`
	Uplink      string `json:"uplink"`
	Talking     bool   `json:"talking"`
	PacketsSent int    `json:"packets_sent"` // by the client, DTX frames skipped
	UplinkLost  uint64 `json:"uplink_lost"`  // by the link
	PacketsLost int64  `json:"packets_lost"` // jitter: expected minus received
	// FECRecovered is FecPacketsReceived: losses the buffer had the next
	// packet's in-band FEC decode; FECRecoveredPct is that over PacketsLost.
	FECRecovered    uint64  `json:"fec_recovered"`
	FECRecoveredPct float64 `json:"fec_recovered_pct"`
	// FECAvailablePct is the share of the link's losses whose next packet
	// arrived and carried LBRR, i.e. real FEC data: FEC recovery above it
	// ran libopus's concealment in FEC's name.
	FECAvailablePct float64 `json:"fec_available_pct"`
	// The same for the frames of speech (louder than -50 dBov) lost: a
	// pause carries no LBRR, and concealing one is not heard.
	SpeechFramesLost      int     `json:"speech_frames_lost"`
	SpeechFECAvailablePct float64 `json:"speech_fec_available_pct"`
	// SpeechFECRecoveredPct is the share of lost speech frames rebuilt
	// from FEC, at least: FecPacketsReceived less the losses of pauses that
	// had LBRR (every one of those might have been among the recoveries),
	// over the speech frames lost.
	SpeechFECRecoveredPct float64  `json:"speech_fec_recovered_pct"`
	LateLossPct           float64  `json:"late_loss_pct"`        // PacketsDiscarded / PacketsReceived
	MeanBufferDelayMs     float64  `json:"mean_buffer_delay_ms"` // JitterBufferDelay / JitterBufferEmittedCount
	MeanTargetMs          float64  `json:"mean_target_delay_ms"` // JitterBufferTargetDelay / JitterBufferEmittedCount
	TargetDelayMs         float64  `json:"target_delay_ms"`      // at the end
	ArrivalP95Ms          *float64 `json:"arrival_delay_p95_ms"` // relative to the fastest packet of the 2 s before
	ConcealmentEvents     uint64   `json:"concealment_events"`
	ConcealedSamples      uint64   `json:"concealed_samples"`
	InsertedSamples       uint64   `json:"inserted_samples"` // for deceleration
	RemovedSamples        uint64   `json:"removed_samples"`  // for acceleration
	// MaxLevelErrorMs is the largest |level − TargetDelay| sampled after
	// any tick past the first second, the level being the one the buffer
	// steers: a Player's PlayoutLevel while it plays, else BufferLevel.
	MaxLevelErrorMs float64 `json:"max_level_error_ms"`
}

// ListenerQuality is what one listener heard in the impaired run, next to
// its clean reference. Frame counts are 20 ms frames played.
type ListenerQuality struct {
	Name        string  `json:"name"`
	Downlink    string  `json:"downlink"`
	RED         bool    `json:"red"`
	PacketsSent uint64  `json:"packets_sent"` // by the engine to this listener
	RawLossPct  float64 `json:"raw_loss_pct"` // lost on the downlink
	// ReportedLossPct is the mean fraction lost of its receiver reports.
	ReportedLossPct float64 `json:"reported_loss_pct"`
	FramesExpected  float64 `json:"frames_expected"` // decoded + FEC + concealed
	FramesDecoded   float64 `json:"frames_decoded"`  // received primaries and RED copies
	// FramesPrimary is FramesDecoded − REDRecovered: a RED copy is
	// accepted only while its packet is missing and not yet due, so it
	// plays unless a drift correction drops it.
	FramesPrimary float64 `json:"frames_primary"`
	REDRecovered  uint64  `json:"red_recovered"` // RED copies that filled a missing packet
	FECRecovered  float64 `json:"fec_recovered"` // from in-band FEC (LBRR) of the next packet
	// FramesConcealed: PLC, FEC asked of a packet without LBRR (libopus
	// conceals), undecodable packets, and silence where playout gave up in
	// an outage.
	FramesConcealed  float64 `json:"frames_concealed"`
	EffectiveLossPct float64 `json:"effective_loss_pct"` // FramesConcealed / FramesExpected
	ConcealmentRatio float64 `json:"concealment_ratio"`  // jitter ConcealedSamples / TotalSamplesReceived
	// The listener's own jitter buffer: JitterBufferDelay /
	// JitterBufferEmittedCount, and PacketsDiscarded / PacketsReceived.
	MeanBufferDelayMs float64 `json:"mean_buffer_delay_ms"`
	LateLossPct       float64 `json:"late_loss_pct"`
	// SNR and segmental SNR of its audio against the clean run's, aligned
	// by cross-correlation (±500 ms); AlignMs is how much later it is.
	// Both leave out the warm-up (see warmUp); SNRWholeDB is the SNR from
	// the first second on, the warm-up's offset counted as noise.
	// SNRBlockDB aligns each second on its own (±500 ms) after the
	// warm-up: a frame a jitter buffer drops or inserts shifts the rest of
	// the run for SNRdB, only its own second for SNRBlockDB.
	SNRdB      *float64 `json:"snr_db"`
	SegSNRdB   *float64 `json:"seg_snr_db"`
	SNRWholeDB *float64 `json:"snr_whole_db"`
	SNRBlockDB *float64 `json:"snr_block_aligned_db"`
	AlignMs    *float64 `json:"align_ms"`
	// MouthToEarMs: the lag of its audio behind what the speakers said
	// (cross-correlation, 0–2 s); CleanMouthToEarMs the clean run's.
	MouthToEarMs      *float64 `json:"mouth_to_ear_ms"`
	CleanMouthToEarMs *float64 `json:"clean_mouth_to_ear_ms"`
	// BadFramesPct is the share of the speech's 20 ms frames after the
	// first 2 s that the listener did not get: each 20 ms of what the
	// speakers sent (their packets decoded, none lost) followed into its
	// audio with the alignment tracked locally (signal.ScoreFrames), and
	// counted when its SNR is under signal.DroppedBelowDB, as the
	// real-time test through the relay scores. CleanBadFramesPct is the
	// clean run's listener's: what the server's re-encoding alone drops
	// (the first frame of a phrase, out of the encoder's DTX, now and
	// then). DistortedFramesPct is the share of the clean run's frames
	// this listener got under signal.DistortedBelowDB of them (the
	// dropped ones included): stretched or concealed. AddedDelayMs is the
	// mean lag of those frames behind the clean run's: the delay the
	// impairment added. All absent when the runs did not align.
	// DroppedOrConcealedPct adds to BadFramesPct the frames the engine
	// concealed for a speaker that the scoring does not see (a frame of
	// concealment inserted before a late packet, or one that scored
	// above signal.DroppedBelowDB): each speech frame counts once,
	// dropped or concealed (signal.DroppedOrConcealed), the engine's
	// buffer placing its concealment by timestamp.
	BadFramesPct          *float64     `json:"bad_frames_pct,omitempty"`
	DroppedOrConcealedPct *float64     `json:"dropped_or_concealed_pct,omitempty"`
	DistortedFramesPct    *float64     `json:"distorted_frames_pct,omitempty"`
	CleanBadFramesPct     *float64     `json:"clean_bad_frames_pct,omitempty"`
	AddedDelayMs          *float64     `json:"added_delay_ms,omitempty"`
	TierSwitches          int          `json:"tier_switches"`
	FinalTier             string       `json:"final_tier"`
	TierChanges           []TierChange `json:"tier_changes,omitempty"`
	StreamContinuous      bool         `json:"stream_continuous"` // seq +1, ts +960, one SSRC, at the engine's side
	StreamBreaks          int          `json:"stream_breaks"`
}

// TierChange is a listener's move to another tier.
type TierChange struct {
	AtS  float64 `json:"at_s"`
	Tier int     `json:"tier"`
}

// Check is one acceptance target of a scenario and what was measured.
type Check struct {
	Scenario string   `json:"scenario"`
	Target   string   `json:"target"`
	Measured *float64 `json:"measured"` // null when it could not be measured
	Op       string   `json:"op"`       // "<=" or ">="
	Limit    float64  `json:"limit"`
	Unit     string   `json:"unit"`
	Pass     bool     `json:"pass"`
	Detail   string   `json:"detail,omitempty"`
}

// newCheck compares measured (NaN: not measured, a failure) with limit.
func newCheck(scenario, target string, measured float64, op string, limit float64, unit, detail string) Check {
	c := Check{Scenario: scenario, Target: target, Op: op, Limit: limit, Unit: unit, Detail: detail}
	if math.IsNaN(measured) {
		return c
	}
	m := sim.Round(measured, 3)
	c.Measured = &m
	if op == "<=" {
		c.Pass = measured <= limit
	} else {
		c.Pass = measured >= limit
	}
	return c
}

// Run runs sc impaired and clean (concurrently, each on its own
// engine and simulated clock) and compares what each listener heard.
func Run(ctx context.Context, sc Scenario) (Result, error) {
	if err := sc.Validate(); err != nil {
		return Result{}, err
	}
	start := time.Now()
	var runs [2]*simRun
	var errs [2]error
	var wg sync.WaitGroup
	modes := []bool{false, true}
	if sc.clean() {
		// A run is deterministic: with no impaired link the clean
		// reference would be the same run again.
		modes = modes[:1]
	}
	for i, clean := range modes {
		wg.Go(func() {
			r, err := newSimRun(&sc, clean)
			if err == nil {
				err = r.run(ctx)
			}
			runs[i], errs[i] = r, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return Result{}, err
	}
	if runs[1] == nil {
		runs[1] = runs[0]
	}
	res := compare(&sc, runs[0], runs[1])
	if sc.checks != nil {
		res.Checks = sc.checks(&res, runs[0])
	}
	res.WallS = sim.Round(time.Since(start).Seconds(), 2)
	return res, nil
}

// RunSuite runs the scenarios, parallel at a time, and returns
// their results in order.
func RunSuite(ctx context.Context, scs []Scenario, parallel int) ([]Result, error) {
	res := make([]Result, len(scs))
	errs := make([]error, len(scs))
	sem := make(chan struct{}, max(1, parallel))
	var wg sync.WaitGroup
	for i := range scs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			res[i], errs[i] = Run(ctx, scs[i])
		})
	}
	wg.Wait()
	return res, errors.Join(errs...)
}

// compare builds the result from the impaired run and its clean reference.
func compare(sc *Scenario, imp, ref *simRun) Result {
	res := Result{
		Scenario: sc.Name, Profile: sc.Profile, DurationS: sc.Duration.Seconds(), Seed: sc.Seed,
	}
	for _, s := range imp.speakers {
		res.Speakers = append(res.Speakers, speakerQuality(s))
	}
	// What the speakers said, together: the reference for mouth-to-ear;
	// and what they sent, decoded: the reference frames are scored on.
	mix, sent := make([]int16, imp.samples), make([]int16, imp.samples)
	talking := false
	var speakersConcealed []int // where the engine concealed a speaker's frame, on the same timeline
	for _, s := range imp.speakers {
		if s.src == nil {
			continue
		}
		talking = true
		addInto(mix, s.mouth)
		addInto(sent, s.decoded)
		speakersConcealed = append(speakersConcealed, s.concealedAt()...)
	}
	out := make([]ListenerQuality, len(imp.listeners))
	var wg sync.WaitGroup
	for i, l := range imp.listeners {
		wg.Go(func() {
			out[i] = listenerQuality(imp, l, ref.listeners[i], mix, sent, speakersConcealed, talking)
		})
	}
	wg.Wait()
	res.Listeners = out
	return res
}

func speakerQuality(s *simSpeaker) SpeakerQuality {
	st := s.final
	q := SpeakerQuality{
		Name: s.p.ID(), Uplink: s.spec.UplinkName, Talking: s.src != nil,
		PacketsSent:       len(s.lbrr),
		UplinkLost:        s.link.Stats().Lost,
		PacketsLost:       st.PacketsLost,
		FECRecovered:      st.FecPacketsReceived,
		FECRecoveredPct:   sim.Round(pct(float64(st.FecPacketsReceived), float64(st.PacketsLost)), 2),
		LateLossPct:       sim.Round(pct(float64(st.PacketsDiscarded), float64(st.PacketsReceived)), 3),
		TargetDelayMs:     durMs(st.TargetDelay),
		ConcealmentEvents: st.ConcealmentEvents,
		ConcealedSamples:  st.ConcealedSamples,
		InsertedSamples:   st.InsertedSamplesForDeceleration,
		RemovedSamples:    st.RemovedSamplesForAcceleration,
	}
	if st.JitterBufferEmittedCount > 0 {
		n := float64(st.JitterBufferEmittedCount)
		q.MeanBufferDelayMs = sim.Round(st.JitterBufferDelay/n*1000, 2)
		q.MeanTargetMs = sim.Round(st.JitterBufferTargetDelay/n*1000, 2)
	}
	var lost, covered, speechCovered int
	for i, got := range s.delivered {
		if got {
			continue
		}
		fec := i+1 < len(s.delivered) && s.delivered[i+1] && s.lbrr[i+1]
		lost++
		if s.speech[i] {
			q.SpeechFramesLost++
		}
		if fec {
			covered++
			if s.speech[i] {
				speechCovered++
			}
		}
	}
	q.FECAvailablePct = sim.Round(pct(float64(covered), float64(lost)), 2)
	q.SpeechFECAvailablePct = sim.Round(pct(float64(speechCovered), float64(q.SpeechFramesLost)), 2)
	speechRecovered := max(0, int(st.FecPacketsReceived)-(covered-speechCovered))
	q.SpeechFECRecoveredPct = sim.Round(pct(float64(speechRecovered), float64(q.SpeechFramesLost)), 2)
	if p := durPercentile(relativeDelays(s.arrivals, 0, math.MaxInt64), 0.95); !math.IsNaN(p) {
		p = sim.Round(p, 2)
		q.ArrivalP95Ms = &p
	}
	for i := int(time.Second / tick); i < len(s.level); i++ {
		q.MaxLevelErrorMs = max(q.MaxLevelErrorMs, math.Abs(durMs(s.level[i]-s.target[i])))
	}
	return q
}

// Comparison windows, in samples: SNR's alignment search and the
// mouth-to-ear search.
const (
	alignSearch    = sampleRate / 2
	mouthEarSearch = 2 * sampleRate
)

// warmUp is the start of a run left out of the SNR comparison: a quarter
// of the run, at most 5 s. Every jitter buffer starts at its 80 ms start
// delay and steps down to its target by dropping frames in pauses; a
// lossy link keeps one 20 ms deeper (jitter's lossyRate), so for its first
// seconds the impaired audio runs 20 ms apart from the clean one, and one
// global alignment would count those seconds as noise (-3 dB over the
// first 5 s of uplink-fec, 10 dB off its whole-run SNR).
func warmUp(d time.Duration) int { return samplesAt(min(5*time.Second, d/4)) }

func listenerQuality(imp *simRun, l, ref *simListener, mix, sent []int16, speakersConcealed []int, talking bool) ListenerQuality {
	st := l.player.Buffer().Stats()
	tiers := imp.room.Config().Tiers
	q := ListenerQuality{
		Name: l.p.ID(), Downlink: l.spec.DownlinkName, RED: l.spec.RED,
		PacketsSent:      l.sent,
		RawLossPct:       sim.Round(pct(float64(l.link.Stats().Lost), float64(l.link.Stats().Sent)), 3),
		REDRecovered:     l.redRecovered,
		ConcealmentRatio: sim.Round(float64(st.ConcealedSamples)/math.Max(1, float64(st.TotalSamplesReceived)), 5),
		LateLossPct:      sim.Round(pct(float64(st.PacketsDiscarded), float64(st.PacketsReceived)), 3),
		TierSwitches:     len(l.changes),
		FinalTier:        tiers[l.finalTier].Name,
		TierChanges:      l.changes,
		StreamContinuous: l.breaks == 0,
		StreamBreaks:     l.breaks,
	}
	if st.JitterBufferEmittedCount > 0 {
		q.MeanBufferDelayMs = sim.Round(st.JitterBufferDelay/float64(st.JitterBufferEmittedCount)*1000, 2)
	}
	var sum float64
	for _, f := range l.reportedLosses {
		sum += f
	}
	q.ReportedLossPct = sim.Round(pct(sum, float64(len(l.reportedLosses))), 3)
	outage := uint64(0)
	if l.silenceAfterStart > st.InsertedSamplesForDeceleration {
		outage = l.silenceAfterStart - st.InsertedSamplesForDeceleration
	}
	concealed := l.concealed + l.decodeErrs + outage
	expected := l.decoded + l.fec + concealed
	frames := func(n uint64) float64 { return sim.Round(float64(n)/frameLen, 2) }
	q.FramesExpected, q.FramesDecoded = frames(expected), frames(l.decoded)
	q.FramesPrimary = sim.Round(q.FramesDecoded-float64(l.redRecovered), 2)
	q.FECRecovered, q.FramesConcealed = frames(l.fec), frames(concealed)
	q.EffectiveLossPct = sim.Round(pct(float64(concealed), float64(expected)), 3)

	if lag, ok := signal.BestLag(ref.heard, l.heard, -alignSearch, alignSearch); ok {
		skip := warmUp(imp.sc.Duration)
		s := sim.Round(signal.SNR(ref.heard, l.heard, lag, skip), 2)
		a := sim.Round(samplesToMs(lag), 2)
		w := sim.Round(signal.SNR(ref.heard, l.heard, lag, sampleRate), 2)
		b := sim.Round(signal.BlockSNR(ref.heard, l.heard, skip, sampleRate, alignSearch, lag), 2)
		q.SNRdB, q.SNRWholeDB, q.SNRBlockDB, q.AlignMs = &s, &w, &b, &a
		if seg, n := signal.SegmentalSNR(ref.heard, l.heard, lag, skip); n > 0 {
			seg = sim.Round(seg, 2)
			q.SegSNRdB = &seg
		}
	}
	if talking {
		if lag, ok := signal.BestLag(mix, l.heard, 0, mouthEarSearch); ok {
			m := sim.Round(samplesToMs(lag), 2)
			q.MouthToEarMs = &m
		}
		if lag, ok := signal.BestLag(mix, ref.heard, 0, mouthEarSearch); ok {
			m := sim.Round(samplesToMs(lag), 2)
			q.CleanMouthToEarMs = &m
		}
		if q.MouthToEarMs != nil && q.CleanMouthToEarMs != nil {
			q.BadFramesPct, q.DroppedOrConcealedPct = scoreSent(sent, l.heard, speakersConcealed, *q.MouthToEarMs)
			q.CleanBadFramesPct, _ = scoreSent(sent, ref.heard, nil, *q.CleanMouthToEarMs)
			q.DistortedFramesPct, q.AddedDelayMs = scoreClean(l.heard, ref.heard, *q.MouthToEarMs, *q.CleanMouthToEarMs)
		}
	}
	return q
}

// Frame scoring (see BadFramesPct): from 2 s on, the first placement
// searched ±300 ms around the mouth-to-ear lag.
const (
	scoreSkip   = 2 * sampleRate
	scoreSearch = 300 * sampleRate / 1000
)

// scoreSent scores heard against what the speakers sent (see
// BadFramesPct), placed first at its mouth-to-ear lag, and returns the
// share of frames dropped, and of frames dropped or concealed at
// concealed (see DroppedOrConcealedPct); nil when too few were scored.
func scoreSent(sent, heard []int16, concealed []int, lagMs float64) (dropped, droppedOrConcealed *float64) {
	segs := signal.ScoreFrames(sent, heard, int(lagMs*sampleRate/1000), scoreSearch, scoreSkip)
	if len(segs) < 100 {
		return nil, nil
	}
	bad := sim.Round(pct(float64(signal.DroppedFrames(segs)), float64(len(segs))), 3)
	lost := sim.Round(pct(float64(signal.DroppedOrConcealed(segs, concealed)), float64(len(segs))), 3)
	return &bad, &lost
}

// scoreClean follows the clean run's audio through heard frame by frame
// (heard placed first at the difference of their mouth-to-ear lags) and
// returns the share of frames distorted and their mean lag behind it (see
// DistortedFramesPct and AddedDelayMs).
func scoreClean(heard, cleanHeard []int16, lagMs, cleanLagMs float64) (distortedPct, addedMs *float64) {
	guess := int((lagMs - cleanLagMs) * sampleRate / 1000)
	segs := signal.ScoreFrames(cleanHeard, heard, guess, scoreSearch, scoreSkip)
	if len(segs) < 100 {
		return nil, nil
	}
	distorted := sim.Round(pct(float64(signal.DistortedFrames(segs)), float64(len(segs))), 3)
	added := sim.Round(samplesToMs(meanLag(segs)), 2)
	return &distorted, &added
}

// addInto adds src into dst, sample by sample, clipped.
func addInto(dst, src []int16) {
	for i, v := range src[:min(len(src), len(dst))] {
		dst[i] = int16(max(math.MinInt16, min(math.MaxInt16, int32(dst[i])+int32(v))))
	}
}

// meanLag is the segments' mean lag, in samples.
func meanLag(segs []signal.Segment) int {
	sum := 0
	for _, s := range segs {
		sum += s.Lag
	}
	return sum / max(1, len(segs))
}
