package engine

import (
	"time"

	"github.com/handsup-audio/handsup/codec"
)

// Tier is one quality level of a room's output. The room encodes the
// shared mix once per tier that has at least one listener, and a speaker's
// own mix-minus encoder takes the settings of the speaker's tier. Tiers are
// ordered from the cleanest link to the worst: a higher index protects more.
type Tier struct {
	Name    string
	Encoder codec.EncoderConfig
	// RED is the redundancy distance for participants that take RED
	// (RFC 2198): each packet also carries the previous RED packets' audio,
	// taken from the tier's history, with no extra encode. 0 to 2. The
	// oldest blocks are left out of a packet they would take past 1,200
	// bytes of payload.
	RED int
	// MinLoss is the reported fraction lost (0..1) from which a participant
	// needs this tier or a more protective one.
	MinLoss float64
}

// DefaultTiers are hi (32 kbps fullband), mid from 3% reported loss
// (24 kbps wideband with in-band FEC and a 10% loss hint; libopus 1.3.1
// engages FEC at 24 kbps only with a wideband cap and a loss hint of
// 5–10%) and low from 8% (16 kbps wideband, RED distance 1 for participants
// that take it; the others stay on mid, whose FEC protects them). 3%, not
// less: one lost packet in a one-second report is already 2%.
func DefaultTiers() []Tier {
	return []Tier{
		{Name: "hi", Encoder: codec.EncoderConfig{Bitrate: 32000, MaxBandwidth: codec.Fullband}},
		{Name: "mid", MinLoss: 0.03, Encoder: codec.EncoderConfig{
			Bitrate: 24000, MaxBandwidth: codec.Wideband, FEC: true, PacketLossPercent: 10}},
		{Name: "low", MinLoss: 0.08, RED: 1, Encoder: codec.EncoderConfig{
			Bitrate: 16000, MaxBandwidth: codec.Wideband}},
	}
}

// Reception is what a participant's receiver reports say about the stream
// it gets from the room (RTCP RR, RFC 3550 §6.4.1).
type Reception struct {
	FractionLost float64       // since its previous report, 0..1
	Jitter       time.Duration // interarrival jitter
	RTT          time.Duration // round trip, 0 when unknown
}

// tierState follows one participant's reports with hysteresis: quick to
// protect (the first report that needs a more protective tier moves it
// there), slow to relax (after the reports have allowed a less protective
// tier for relaxAfter, it moves to the most protective tier any of them
// needed).
type tierState struct {
	calmSince  time.Time // first report of the current calm spell; zero while not calm
	calmWant   int       // the most protective tier the calm spell's reports needed
	rtt        time.Duration
	nackTokens float64
	nackAt     time.Time
	tier       int // last: every tick reads it, next to Participant.out
}

// wantTier is the least protective tier whose MinLoss the loss reaches,
// among the tiers that protect the participant: a tier whose protection is
// RED alone (no in-band FEC) does nothing for one that does not take RED.
func wantTier(tiers []Tier, loss float64, takesRED bool) int {
	want := 0
	for i, t := range tiers {
		if loss >= t.MinLoss && (takesRED || t.RED == 0 || t.Encoder.FEC) {
			want = i
		}
	}
	return want
}

// update folds one report in and reports whether the tier changed.
func (s *tierState) update(tiers []Tier, r Reception, now time.Time, relaxAfter time.Duration, takesRED bool) bool {
	s.rtt = r.RTT
	want := wantTier(tiers, r.FractionLost, takesRED)
	switch {
	case want > s.tier:
		s.tier, s.calmSince = want, time.Time{}
		return true
	case want == s.tier:
		s.calmSince = time.Time{}
	case s.calmSince.IsZero():
		s.calmSince, s.calmWant = now, want
	default:
		s.calmWant = max(s.calmWant, want)
		if now.Sub(s.calmSince) >= relaxAfter {
			s.tier, s.calmSince = s.calmWant, time.Time{}
			return true
		}
	}
	return false
}

// allowNACK takes one retransmission from the participant's budget: rate
// per second, bursts up to rate/2.
func (s *tierState) allowNACK(now time.Time, rate int) bool {
	if rate <= 0 {
		return false
	}
	if !s.nackAt.IsZero() {
		s.nackTokens += now.Sub(s.nackAt).Seconds() * float64(rate)
	} else {
		s.nackTokens = float64(rate) / 2
	}
	s.nackAt = now
	s.nackTokens = min(s.nackTokens, float64(rate)/2)
	if s.nackTokens < 1 {
		return false
	}
	s.nackTokens--
	return true
}

// ReportReception takes what the participant's receiver reports say about
// its stream (RTCP RR) and moves it between the room's tiers: at once to a
// more protective tier when the reported loss needs it, back once the
// reports have allowed less for RoomConfig.TierRelax. A speaker's own
// mix-minus encoder follows its tier too. It returns the tier, and whether
// it changed; the stream's sequence numbers and timestamps go on unbroken.
func (p *Participant) ReportReception(rep Reception) (tier int, changed bool) {
	r := p.room
	now := r.eng.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	old := p.ts.tier
	c := &r.counters
	c.loss.observe(rep.FractionLost)
	c.jitter.observeDuration(rep.Jitter)
	if rep.RTT > 0 {
		c.rtt.observeDuration(rep.RTT)
	}
	changed = p.ts.update(r.tiers, rep, now, r.cfg.TierRelax, p.out.redPT != 0)
	if changed {
		r.counters.tierSwitches.Add(1)
		if !p.left.Load() && r.byID[p.id] == p {
			r.tierCount[old]--
			r.tierCount[p.ts.tier]++
		}
	}
	return p.ts.tier, changed
}

// Tier is the index in RoomConfig.Tiers of the participant's tier.
func (p *Participant) Tier() int {
	p.room.mu.Lock()
	defer p.room.mu.Unlock()
	return p.ts.tier
}
