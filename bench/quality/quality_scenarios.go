package quality

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/handsup-audio/handsup/bench/impair"
	"github.com/handsup-audio/handsup/bench/internal/sim"
	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/engine"
)

// RoomScenario is the scenario -impair runs.
const RoomScenario = "room"

// acceptance lists the scenarios with targets, in the order the suite
// runs and reports them.
var acceptance = []string{"uplink-fec", "downlink-red", "uplink-jitter", "jitter-60", "jitter-60-fifo", "jitter-80", "jitter-80-fifo", "drift-fast", "drift-slow", "dtx", "tiers"}

// ScenarioNames lists every named scenario: RoomScenario first, then the
// acceptance scenarios.
func ScenarioNames() []string { return append([]string{RoomScenario}, acceptance...) }

// AcceptanceScenarios lists the scenarios that have acceptance targets.
func AcceptanceScenarios() []string { return slices.Clone(acceptance) }

// ProfileNames lists bench/impair's profiles.
func ProfileNames() []string {
	var names []string
	for _, p := range impair.Profiles() {
		names = append(names, p.Name)
	}
	return names
}

// NewScenario returns the named scenario with seed 1. profile names the
// impairment of every link of RoomScenario ("" is clean); the other
// scenarios fix their own links and take no profile.
func NewScenario(name, profile string) (Scenario, error) {
	if name == RoomScenario {
		if profile == "" {
			profile = "clean"
		}
		return roomScenario(profile)
	}
	if profile != "" {
		return Scenario{}, fmt.Errorf("quality: scenario %q sets its own links; a profile applies to %q only", name, RoomScenario)
	}
	switch name {
	case "uplink-fec":
		return uplinkFEC(), nil
	case "downlink-red":
		return downlinkRED(), nil
	case "uplink-jitter":
		return uplinkJitter(), nil
	case "jitter-60":
		return jitterScenario(name, 60*time.Millisecond, 30*time.Millisecond, true, 0.5), nil
	case "jitter-60-fifo":
		return jitterScenario(name, 60*time.Millisecond, 30*time.Millisecond, false, 0.5), nil
	case "jitter-80":
		return jitterScenario(name, 80*time.Millisecond, 40*time.Millisecond, true, 1), nil
	case "jitter-80-fifo":
		return jitterScenario(name, 80*time.Millisecond, 40*time.Millisecond, false, 1), nil
	case "drift-fast":
		return drift("drift-fast", 0.005), nil
	case "drift-slow":
		return drift("drift-slow", -0.005), nil
	case "dtx":
		return dtxScenario(), nil
	case "tiers":
		return tiersScenario(), nil
	}
	return Scenario{}, fmt.Errorf("quality: unknown scenario %q (valid: %s)", name, strings.Join(ScenarioNames(), ", "))
}

func voice(seed uint64) signal.Generator { return signal.NewVoice(seed) }

func mustProfile(name string) impair.Config {
	cfg, ok := impair.Profile(name)
	if !ok {
		panic("quality: no impair profile " + name)
	}
	return cfg
}

func cleanListener(name string) ListenerSpec {
	return ListenerSpec{Name: name, DownlinkName: "clean"}
}

func cleanSpeaker(name string, enc codec.EncoderConfig) SpeakerSpec {
	return SpeakerSpec{Name: name, Encoder: enc, Source: voice, UplinkName: "clean"}
}

// roomScenario: 3 speakers (2 talking, 1 silent with DTX) and 4 listeners
// (the last two taking RED), every link impaired by the profile, 60 s.
func roomScenario(name string) (Scenario, error) {
	cfg, ok := impair.Profile(name)
	if !ok {
		return Scenario{}, fmt.Errorf("quality: unknown impairment profile %q (valid: %s)", name, strings.Join(ProfileNames(), ", "))
	}
	sc := Scenario{
		Name: RoomScenario, Profile: name, Duration: 60 * time.Second, Seed: 1,
		Description: "3 speakers (2 talking, 1 silent with DTX), 4 listeners (2 taking RED), every uplink and downlink " + name,
	}
	for i := range 3 {
		s := SpeakerSpec{Name: fmt.Sprintf("speaker-%d", i), Uplink: cfg, UplinkName: name}
		if i < 2 {
			s.Source = voice
		} else {
			s.Encoder.DTX = true
		}
		sc.Speakers = append(sc.Speakers, s)
	}
	for i := range 4 {
		sc.Listeners = append(sc.Listeners, ListenerSpec{
			Name: fmt.Sprintf("listener-%d", i), RED: i >= 2, Downlink: cfg, DownlinkName: name,
		})
	}
	return sc, nil
}

// fecEncoder is the FEC configuration libopus 1.3.1 engages at 24 kbps:
// wideband cap, loss hint 10% (engine.DefaultTiers' mid tier).
var fecEncoder = codec.EncoderConfig{Bitrate: 24000, MaxBandwidth: codec.Wideband, FEC: true, PacketLossPercent: 10}

func uplinkFEC() Scenario {
	const name = "uplink-fec"
	s := cleanSpeaker("speaker", fecEncoder)
	s.Uplink, s.UplinkName = mustProfile("loss-10"), "loss-10"
	return Scenario{
		Name: name, Profile: "uplink loss-10", Duration: 120 * time.Second, Seed: 1,
		Description: "a speaker with in-band FEC (24 kbps wideband, 10% loss hint) on a loss-10 uplink; a clean listener",
		Speakers:    []SpeakerSpec{s},
		Listeners:   []ListenerSpec{cleanListener("listener")},
		checks: func(res *Result, _ *simRun) []Check {
			sp, l := res.Speakers[0], res.Listeners[0]
			return []Check{
				newCheck(name, "lost speech frames recovered from FEC (at least)",
					sp.SpeechFECRecoveredPct, ">=", 85, "%",
					fmt.Sprintf("%d recovered of %d lost, %d of them speech; of all losses %.1f%% recovered: libopus codes no FEC for pauses; the next packet carried FEC for %.1f%% of the speech losses",
						sp.FECRecovered, sp.PacketsLost, sp.SpeechFramesLost, sp.FECRecoveredPct, sp.SpeechFECAvailablePct)),
				// Each second aligned on its own, as speech-quality measures
				// align utterances: an adaptive buffer drops or inserts a
				// frame now and then, which a single alignment would count
				// as noise for the rest of the run.
				newCheck(name, "listener's SNR against the clean run, each second aligned", value(l.SNRBlockDB), ">=", 15, "dB",
					fmt.Sprintf("after a %gs warm-up; with one alignment for the whole run %s dB, segmental %s dB, from 1 s %s dB",
						samplesToMs(warmUp(time.Duration(res.DurationS*float64(time.Second))))/1000,
						fmtOpt(l.SNRdB), fmtOpt(l.SegSNRdB), fmtOpt(l.SNRWholeDB))),
			}
		},
	}
}

func downlinkRED() Scenario {
	const name = "downlink-red"
	return Scenario{
		Name: name, Profile: "downlink loss-20", Duration: 120 * time.Second, Seed: 1,
		Description: "a clean speaker; a RED listener on a single tier with RED distance 1 (16 kbps wideband), its downlink loss-20",
		Room: engine.RoomConfig{Tiers: []engine.Tier{{
			Name: "red", RED: 1, Encoder: codec.EncoderConfig{Bitrate: 16000, MaxBandwidth: codec.Wideband},
		}}},
		Speakers:  []SpeakerSpec{cleanSpeaker("speaker", codec.EncoderConfig{})},
		Listeners: []ListenerSpec{{Name: "listener", RED: true, Downlink: mustProfile("loss-20"), DownlinkName: "loss-20"}},
		checks: func(res *Result, _ *simRun) []Check {
			l := res.Listeners[0]
			return []Check{newCheck(name, "effective loss after RED recovery", l.EffectiveLossPct, "<=", 5, "%",
				fmt.Sprintf("raw loss %.2f%%, %d RED recoveries, %.0f of %.0f frames concealed",
					l.RawLossPct, l.REDRecovered, l.FramesConcealed, l.FramesExpected))}
		},
	}
}

func uplinkJitter() Scenario {
	const name = "uplink-jitter"
	const stop = 60 * time.Second
	s := cleanSpeaker("speaker", codec.EncoderConfig{})
	s.Uplink, s.UplinkName = mustProfile("jitter-30"), "jitter-30 for 60 s, then clean"
	s.Uplink.Stop = stop
	return Scenario{
		Name: name, Profile: "uplink jitter-30 0–60 s", Duration: 90 * time.Second, Seed: 1,
		Description: "a speaker whose uplink has jitter-30 for 60 s, then is clean for 30 s; a clean listener",
		Speakers:    []SpeakerSpec{s},
		Listeners:   []ListenerSpec{cleanListener("listener")},
		checks: func(res *Result, imp *simRun) []Check {
			sp, s := res.Speakers[0], imp.speakers[0]
			checks := []Check{newCheck(name, "late loss (PacketsDiscarded / PacketsReceived)", sp.LateLossPct, "<=", 1, "%",
				fmt.Sprintf("%d packets lost on the link", sp.UplinkLost))}
			// The delay it adds is checked by the jitter-60 and jitter-80
			// scenarios, against the clean run's mouth-to-ear delay: the
			// buffer's mean delay less the p95 relative delay, checked here
			// before, leaves out the fastest packet's delay on both sides
			// and passed a buffer that played 2.5 σ too late.
			floor := imp.room.Config().Jitter.MinDelay
			if floor == 0 {
				floor = 20 * time.Millisecond
			}
			back, detail := math.NaN(), "TargetDelay still above the floor at the end"
			if k, ok := settledFrom(s.target, int(stop/tick), floor); ok {
				back = (time.Duration(k+1)*tick - stop).Seconds()
				detail = fmt.Sprintf("TargetDelay %v from %.2f s on", floor, (time.Duration(k+1) * tick).Seconds())
			}
			return append(checks, newCheck(name, "TargetDelay back at the floor after the jitter stops", back, "<=", 10, "s", detail))
		},
	}
}

// jitterScenario is issue 10's real-time measurement on the simulated
// clock: a speaker whose uplink is delay ± jitter (normal; free to reorder
// or in order), a clean listener, 60 s. The listener's frames after 2 s
// are scored against what the speaker sent, each counted when it was
// dropped or the engine's buffer concealed it
// (ListenerQuality.DroppedOrConcealedPct): at most maxBad percent, and the delay added over
// the clean run at most the profile's p95 delay plus 20 ms.
func jitterScenario(name string, delay, jitter time.Duration, reorder bool, maxBad float64) Scenario {
	s := cleanSpeaker("speaker", codec.EncoderConfig{})
	s.Uplink = impair.Config{Delay: delay, Jitter: jitter, Reorder: reorder}
	order := "in order"
	if reorder {
		order = "free to reorder"
	}
	s.UplinkName = fmt.Sprintf("%v ± %v, %s", delay, jitter, order)
	return Scenario{
		Name: name, Profile: "uplink " + s.UplinkName, Duration: 60 * time.Second, Seed: 1,
		Description: "a speaker whose uplink is " + s.UplinkName + " (normal jitter); a clean listener",
		Speakers:    []SpeakerSpec{s},
		Listeners:   []ListenerSpec{cleanListener("listener")},
		checks: func(res *Result, imp *simRun) []Check {
			l, sp := res.Listeners[0], res.Speakers[0]
			p95 := linkP95(imp.speakers[0])
			detail := fmt.Sprintf("%s%% dropped, the clean run's %s%%, %s%% distorted; speaker's buffer: target %.0f ms at the end, mean delay %.1f ms, %d frames concealed in %d events, late loss %.2f%%, stretched +%d/−%d samples",
				fmtOpt(l.BadFramesPct), fmtOpt(l.CleanBadFramesPct), fmtOpt(l.DistortedFramesPct), sp.TargetDelayMs, sp.MeanBufferDelayMs, sp.ConcealedSamples/uint64(frameLen), sp.ConcealmentEvents, sp.LateLossPct, sp.InsertedSamples, sp.RemovedSamples)
			return []Check{
				newCheck(name, "speech frames after 2 s dropped or concealed", value(l.DroppedOrConcealedPct), "<=", maxBad, "%", detail),
				newCheck(name, "delay added over the clean run − the link's p95 delay", value(l.AddedDelayMs)-durMs(p95), "<=", 20, "ms",
					fmt.Sprintf("added %s ms, the link's p95 delay %.1f ms; mouth to ear %s ms, clean %s ms", fmtOpt(l.AddedDelayMs), durMs(p95), fmtOpt(l.MouthToEarMs), fmtOpt(l.CleanMouthToEarMs))),
			}
		},
	}
}

// linkP95 is the 95th percentile of the delay a speaker's uplink gave
// its packets: each packet's transit (arrival less media time) less the
// speaker's send phase, for a sender whose clock keeps time. On a link
// that keeps order a packet waits for the one before, so the delays are
// longer than the profile's own (a 60 ± 30 ms profile's p95 is 109.3 ms;
// 112 ms in order).
func linkP95(s *simSpeaker) time.Duration {
	d := make([]time.Duration, len(s.arrivals))
	for i, a := range s.arrivals {
		d[i] = a.transit - s.phase
	}
	return sim.Percentile(d, 0.95)
}

// settledFrom finds the first tick index at or after from from which
// every sample equals floor.
func settledFrom(target []time.Duration, from int, floor time.Duration) (int, bool) {
	k := len(target)
	for i := len(target) - 1; i >= from && target[i] == floor; i-- {
		k = i
	}
	return k, k < len(target)
}

func drift(name string, skew float64) Scenario {
	s := cleanSpeaker("speaker", codec.EncoderConfig{})
	s.Skew = skew
	dir := "fast"
	if skew < 0 {
		dir = "slow"
	}
	return Scenario{
		Name: name, Profile: fmt.Sprintf("clean, sender clock %.1f%% %s", math.Abs(skew)*100, dir),
		Duration: 10 * time.Minute, Seed: 1,
		Description: fmt.Sprintf("a speaker whose clock runs %.1f%% %s, clean links, 10 minutes of speech with pauses", math.Abs(skew)*100, dir),
		Speakers:    []SpeakerSpec{s},
		Listeners:   []ListenerSpec{cleanListener("listener")},
		checks: func(res *Result, imp *simRun) []Check {
			sp, s := res.Speakers[0], imp.speakers[0]
			// The level is the one the buffer steers (a Player's
			// PlayoutLevel, see afterTick): count the ticks on the band's
			// edge as well as beyond it.
			edge, out, worst := 0, 0, 0.0
			for i := int(time.Second / tick); i < len(s.level); i++ {
				e := durMs(s.level[i] - s.target[i])
				switch {
				case math.Abs(e) > 40:
					out++
				case math.Abs(e) == 40:
					edge++
				}
				if math.Abs(e) > math.Abs(worst) {
					worst = e
				}
			}
			return []Check{newCheck(name, "max |playout level − TargetDelay| over every tick after 1 s",
				sp.MaxLevelErrorMs, "<=", 40, "ms",
				fmt.Sprintf("worst %+.0f ms; of %d ticks %d at ±40 ms, %d beyond; TargetDelay %.0f ms at the end; %d samples removed, %d inserted; %d concealment events",
					worst, len(s.level)-int(time.Second/tick), edge, out, sp.TargetDelayMs, sp.RemovedSamples, sp.InsertedSamples, sp.ConcealmentEvents))}
		},
	}
}

func dtxScenario() Scenario {
	const name = "dtx"
	s := cleanSpeaker("speaker", codec.EncoderConfig{DTX: true})
	s.Source = func(seed uint64) signal.Generator {
		return signal.Gated(signal.NewVoice(seed), 2*time.Second, 5*time.Second)
	}
	return Scenario{
		Name: name, Profile: "clean", Duration: 120 * time.Second, Seed: 1,
		Description: "a speaker with DTX that talks 2 s and is silent 5 s; ≤2-byte packets skipped but one per 400 ms; a clean listener",
		Speakers:    []SpeakerSpec{s},
		Listeners:   []ListenerSpec{cleanListener("listener")},
		checks: func(res *Result, _ *simRun) []Check {
			sp := res.Speakers[0]
			return []Check{newCheck(name, "concealment events in the speaker's jitter buffer", float64(sp.ConcealmentEvents), "<=", 0, "",
				fmt.Sprintf("%d packets sent of %d frames", sp.PacketsSent, int(res.DurationS*50)))}
		},
	}
}

func tiersScenario() Scenario {
	const name = "tiers"
	const lossStart, lossStop = 10 * time.Second, 40 * time.Second
	return Scenario{
		Name: name, Profile: "downlink 10% loss 10–40 s", Duration: 60 * time.Second, Seed: 1,
		Description: "a clean speaker; a RED listener on the default tiers whose downlink loses 10% at random from 10 s to 40 s",
		Speakers:    []SpeakerSpec{cleanSpeaker("speaker", codec.EncoderConfig{})},
		Listeners: []ListenerSpec{{Name: "listener", RED: true, DownlinkName: "10% loss 10–40 s",
			Downlink: impair.Config{Loss: 0.10, Start: lossStart, Stop: lossStop}}},
		checks: func(res *Result, _ *simRun) []Check {
			l := res.Listeners[0]
			left, back := math.NaN(), math.NaN()
			for _, c := range l.TierChanges {
				at := time.Duration(c.AtS * float64(time.Second))
				if c.Tier > 0 && at >= lossStart && math.IsNaN(left) {
					left = (at - lossStart).Seconds()
				}
				if c.Tier == 0 && at >= lossStop {
					back = (at - lossStop).Seconds()
				}
			}
			backDetail := "not back on hi by the end of the run"
			if !math.IsNaN(back) {
				backDetail = "steps: " + fmtChanges(l.TierChanges)
			}
			return []Check{
				newCheck(name, "leaves hi after the loss starts", left, "<=", 3, "s", "steps: "+fmtChanges(l.TierChanges)),
				newCheck(name, "back on hi after the loss ends", back, "<=", 15, "s", backDetail),
				newCheck(name, "stream breaks (seq +1, ts +960 at the engine)", float64(l.StreamBreaks), "<=", 0, "",
					fmt.Sprintf("%d packets, %d tier switches", l.PacketsSent, l.TierSwitches)),
			}
		},
	}
}

func fmtChanges(cs []TierChange) string {
	names := []string{"hi", "mid", "low"}
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteString(", ")
		}
		n := fmt.Sprint(c.Tier)
		if c.Tier < len(names) {
			n = names[c.Tier]
		}
		fmt.Fprintf(&b, "%s at %gs", n, sim.Round(c.AtS, 2))
	}
	if len(cs) == 0 {
		return "none"
	}
	return b.String()
}

func value(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}

func fmtOpt(p *float64) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf("%.1f", *p)
}
