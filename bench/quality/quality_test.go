package quality

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/bench/impair"
	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/engine"
)

// The quality tests run the scenarios' mechanics for a few simulated
// seconds; the acceptance figures come from the full runs
// (handsup-bench -scenario all, docs/weak-networks.md).

func shortScenario(t *testing.T, name string, d time.Duration) Scenario {
	t.Helper()
	sc, err := NewScenario(name, "")
	if err != nil {
		t.Fatal(err)
	}
	sc.Duration = d
	return sc
}

func runQuality(t *testing.T, sc Scenario) Result {
	t.Helper()
	res, err := Run(context.Background(), sc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := json.Marshal(res); err != nil { // no NaN or Inf slipped in
		t.Fatalf("result does not marshal: %v", err)
	}
	return res
}

func logJSON(t *testing.T, what string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	t.Logf("%s %s", what, b)
}

// On clean links nothing is lost, every stream is continuous, and two runs
// of the same scenario hear exactly the same audio: the simulation is
// deterministic, so a clean run is its own reference.
func TestQualityCleanRoom(t *testing.T) {
	sc, err := NewScenario(RoomScenario, "clean")
	if err != nil {
		t.Fatal(err)
	}
	sc.Duration = 2 * time.Second
	var runs [2]*simRun
	var errs [2]error
	var wg sync.WaitGroup
	for i := range runs {
		wg.Go(func() {
			r, err := newSimRun(&sc, i == 1)
			if err == nil {
				err = r.run(context.Background())
			}
			runs[i], errs[i] = r, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatal(err)
	}
	res := compare(&sc, runs[0], runs[1])
	if len(res.Speakers) != 3 || len(res.Listeners) != 4 {
		t.Fatalf("%d speakers, %d listeners, want 3 and 4", len(res.Speakers), len(res.Listeners))
	}
	for _, s := range res.Speakers {
		if s.PacketsLost != 0 || s.ConcealmentEvents != 0 || s.LateLossPct != 0 {
			t.Errorf("%s: lost %d, %d concealment events, late %.2f%% on a clean uplink", s.Name, s.PacketsLost, s.ConcealmentEvents, s.LateLossPct)
		}
	}
	if res.Speakers[2].Talking || res.Speakers[2].PacketsSent > 20 {
		t.Errorf("silent speaker: talking %v, %d packets in 2 s, want DTX (a few)", res.Speakers[2].Talking, res.Speakers[2].PacketsSent)
	}
	for _, l := range res.Listeners {
		if l.EffectiveLossPct != 0 || l.FramesConcealed != 0 || l.RawLossPct != 0 {
			t.Errorf("%s: effective loss %.2f%%, %.0f concealed, raw %.2f%%", l.Name, l.EffectiveLossPct, l.FramesConcealed, l.RawLossPct)
		}
		if l.FramesDecoded < 90 || l.PacketsSent != 100 {
			t.Errorf("%s: %.0f frames decoded of %d sent, want about 100 of 100", l.Name, l.FramesDecoded, l.PacketsSent)
		}
		if l.SNRdB == nil || *l.SNRdB < signal.MaxSNR || l.SegSNRdB == nil || *l.SegSNRdB < signal.SegmentMaxDB {
			t.Errorf("%s: SNR %s, segmental %s against an identical run, want %d and %d", l.Name,
				fmtOpt(l.SNRdB), fmtOpt(l.SegSNRdB), signal.MaxSNR, signal.SegmentMaxDB)
		}
		if !l.StreamContinuous || l.TierSwitches != 0 || l.FinalTier != "hi" {
			t.Errorf("%s: continuous %v, %d switches, tier %s", l.Name, l.StreamContinuous, l.TierSwitches, l.FinalTier)
		}
		// A perfect network: the speakers' capture, two jitter buffers at
		// their floor and a tick or two.
		if l.MouthToEarMs == nil || *l.MouthToEarMs < 20 || *l.MouthToEarMs > 250 {
			t.Errorf("%s: mouth to ear %s ms on clean links", l.Name, fmtOpt(l.MouthToEarMs))
		}
	}
}

// A lossy uplink to a speaker with in-band FEC: the engine's jitter
// buffer rebuilds lost frames from the next packet's LBRR.
func TestQualityUplinkFEC(t *testing.T) {
	res := runQuality(t, shortScenario(t, "uplink-fec", 6*time.Second))
	s, l := res.Speakers[0], res.Listeners[0]
	logJSON(t, "speaker", s)
	t.Logf("listener SNR %s dB", fmtOpt(l.SNRdB))
	if s.PacketsLost < 10 || s.UplinkLost == 0 {
		t.Fatalf("%d lost (link %d) of %d on loss-10", s.PacketsLost, s.UplinkLost, s.PacketsSent)
	}
	if s.FECRecovered == 0 || s.FECAvailablePct == 0 || s.SpeechFECAvailablePct < 50 {
		t.Errorf("FEC recovered %d; LBRR available for %.0f%% of losses, %.0f%% in speech", s.FECRecovered, s.FECAvailablePct, s.SpeechFECAvailablePct)
	}
	if l.SNRdB == nil || *l.SNRdB >= signal.MaxSNR || l.EffectiveLossPct != 0 {
		t.Errorf("clean listener: SNR %s (want finite: the uplink lost audio), effective loss %.2f%%", fmtOpt(l.SNRdB), l.EffectiveLossPct)
	}
	if len(res.Checks) != 2 {
		t.Errorf("%d checks, want 2", len(res.Checks))
	}
}

// A RED listener on a lossy downlink: the copies in the next packets fill
// most losses.
func TestQualityDownlinkRED(t *testing.T) {
	res := runQuality(t, shortScenario(t, "downlink-red", 8*time.Second))
	l := res.Listeners[0]
	logJSON(t, "listener", l)
	if !l.RED || l.RawLossPct < 5 {
		t.Fatalf("RED %v, raw loss %.1f%%", l.RED, l.RawLossPct)
	}
	if l.REDRecovered == 0 || l.EffectiveLossPct >= l.RawLossPct/2 {
		t.Errorf("%d RED recoveries, effective loss %.2f%% of raw %.2f%%", l.REDRecovered, l.EffectiveLossPct, l.RawLossPct)
	}
	if l.FramesConcealed == 0 || l.ReportedLossPct < 5 {
		t.Errorf("%.0f frames concealed, reported loss %.1f%%: the reports must count losses before recovery", l.FramesConcealed, l.ReportedLossPct)
	}
	if !l.StreamContinuous || l.FinalTier != "red" {
		t.Errorf("continuous %v, tier %s", l.StreamContinuous, l.FinalTier)
	}
}

// Receiver reports move a listener to a protective tier when its downlink
// starts losing and back when it stops, and the stream never breaks.
func TestQualityTierReports(t *testing.T) {
	sc := Scenario{
		Name: "tiers-short", Duration: 9 * time.Second, Seed: 3,
		Room:     engine.RoomConfig{TierRelax: 2 * time.Second},
		Speakers: []SpeakerSpec{{Source: voice}},
		Listeners: []ListenerSpec{{RED: true,
			Downlink: impair.Config{Loss: 0.2, Start: 2 * time.Second, Stop: 4 * time.Second}}},
	}
	res := runQuality(t, sc)
	l := res.Listeners[0]
	t.Logf("tier changes %v, red %d, fec %.0f", l.TierChanges, l.REDRecovered, l.FECRecovered)
	if len(l.TierChanges) < 2 || l.TierChanges[0].Tier == 0 || l.TierChanges[0].AtS < 2 || l.TierChanges[0].AtS > 4 {
		t.Fatalf("tier changes %v: want a move off hi during the loss (2-4 s)", l.TierChanges)
	}
	if l.FinalTier != "hi" {
		t.Errorf("final tier %s, want hi after 5 s of clean reports with TierRelax 2 s", l.FinalTier)
	}
	if !l.StreamContinuous || l.StreamBreaks != 0 {
		t.Errorf("stream broke %d times across tier switches", l.StreamBreaks)
	}
}

// A DTX speaker sends far fewer packets and its silences are not losses.
func TestQualityDTX(t *testing.T) {
	res := runQuality(t, shortScenario(t, "dtx", 8*time.Second))
	s := res.Speakers[0]
	logJSON(t, "speaker", s)
	if s.PacketsSent == 0 || s.PacketsSent > 300 {
		t.Errorf("%d packets of 400 frames: talking 2 s in 7, DTX should skip most of the rest", s.PacketsSent)
	}
	if s.ConcealmentEvents != 0 || s.PacketsLost != 0 {
		t.Errorf("%d concealment events, %d lost on a clean uplink with DTX", s.ConcealmentEvents, s.PacketsLost)
	}
}

// A fast sender's surplus is dropped by the engine's jitter buffer, a
// slow one's shortfall inserted.
func TestQualityDrift(t *testing.T) {
	for _, skew := range []float64{0.02, -0.02} {
		sc := shortScenario(t, "drift-fast", 5*time.Second)
		sc.Speakers[0].Skew = skew
		res := runQuality(t, sc)
		s := res.Speakers[0]
		t.Logf("skew %+.2f: removed %d, inserted %d, max level error %.0f ms, sent %d", skew, s.RemovedSamples, s.InsertedSamples, s.MaxLevelErrorMs, s.PacketsSent)
		if skew > 0 && (s.PacketsSent <= 250 || s.RemovedSamples <= 2*codec.FrameSamples) {
			t.Errorf("fast sender: %d packets in 5 s, %d samples removed", s.PacketsSent, s.RemovedSamples)
		}
		if skew < 0 && (s.PacketsSent >= 250 || s.InsertedSamples == 0) {
			t.Errorf("slow sender: %d packets in 5 s, %d samples inserted", s.PacketsSent, s.InsertedSamples)
		}
		if len(res.Checks) != 1 {
			t.Errorf("%d checks, want 1", len(res.Checks))
		}
	}
}

func TestNewScenario(t *testing.T) {
	for _, name := range ScenarioNames() {
		sc, err := NewScenario(name, "")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := sc.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if name != RoomScenario && sc.checks == nil {
			t.Errorf("%s has no acceptance checks", name)
		}
	}
	for _, p := range ProfileNames() {
		if _, err := NewScenario(RoomScenario, p); err != nil {
			t.Errorf("room with %s: %v", p, err)
		}
	}
	if _, err := NewScenario("nope", ""); err == nil {
		t.Error("unknown scenario accepted")
	}
	if _, err := NewScenario(RoomScenario, "nope"); err == nil {
		t.Error("unknown profile accepted")
	}
	if _, err := NewScenario("uplink-fec", "loss-10"); err == nil {
		t.Error("a profile for a scenario with its own links accepted")
	}
}

func TestHasLBRR(t *testing.T) {
	count := func(cfg codec.EncoderConfig) (lbrr, n int) {
		enc, err := codec.NewEncoder(cfg)
		if err != nil {
			t.Fatal(err)
		}
		v := signal.NewVoice(7)
		pcm := make([]int16, codec.FrameSamples)
		buf := make([]byte, codec.MaxPacketBytes)
		for range 250 {
			v.Fill(pcm)
			k, err := enc.Encode(pcm, buf)
			if err != nil {
				t.Fatal(err)
			}
			n++
			if codec.HasFEC(buf[:k]) {
				lbrr++
			}
		}
		return lbrr, n
	}
	if got, n := count(fecEncoder); got < n/3 {
		t.Errorf("FEC encoder: %d of %d packets with LBRR", got, n)
	}
	if got, n := count(codec.EncoderConfig{Bitrate: 24000, MaxBandwidth: codec.Wideband}); got != 0 {
		t.Errorf("encoder without FEC: %d of %d packets with LBRR", got, n)
	}
}
