package engine

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
)

// The shedder starts at the first tick that ends past Above of its 20 ms;
// it holds while more than 1% of the ticks end past Below, or any past
// Above; it stops after Hold of calm ticks, holds twice as long when the
// trouble comes back within a minute of its stopping, and its default
// again after a long calm.
func TestShedderStartsAtOnceStopsSlowly(t *testing.T) {
	s := &shedder{cfg: ShedConfig{}.withDefaults()}
	now := time.Unix(1_700_000_000, 0)
	ms := func(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }
	// round observes one tick of each of four phases, 5 ms apart, each
	// ending used after its slot, and says whether shedding is on after.
	round := func(used time.Duration) bool {
		for range 4 {
			now = now.Add(5 * time.Millisecond)
			s.observe(used, 0.6, now) // encodes 60% of the work, as at 100 small rooms
		}
		return s.complexity() >= 0
	}
	// calm runs rounds of ticks ending 5 ms after their slots (one round
	// in every outlierEvery 11 ms, past Below: its four ticks) until shedding stops, and
	// says how long that took.
	calm := func(outlierEvery int) time.Duration {
		start := now
		for i := 1; now.Sub(start) < 2*maxShedHold; i++ {
			used := ms(5)
			if outlierEvery > 0 && i%outlierEvery == 0 {
				used = ms(11)
			}
			if !round(used) {
				return now.Sub(start)
			}
		}
		return 2 * maxShedHold
	}
	within := func(d, hold time.Duration) bool { return d >= hold && d <= hold+TickInterval }

	for range 500 {
		if round(ms(13.9)) { // 0.695 of 20 ms
			t.Fatal("shedding at ticks under Above")
		}
	}
	if !round(ms(14.5)) {
		t.Fatal("a tick past Above did not start shedding")
	}
	if got := s.complexity(); got != DefaultShedComplexity {
		t.Fatalf("shedding complexity %d, want the default %d", got, DefaultShedComplexity)
	}
	// Ticks between Below and Above keep it on, however long.
	for range 500 {
		if !round(ms(11)) {
			t.Fatal("stopped shedding at ticks past Below")
		}
	}
	// So do calm ticks with 2% past Below...
	round(ms(30))
	if d := calm(50); d < 2*maxShedHold {
		t.Fatalf("stopped after %v of ticks 2%% past Below", d)
	}
	// ...but not with 0.5%: it stops after the 2 s hold.
	round(ms(30))
	if d := calm(200); !within(d, 2*time.Second) {
		t.Fatalf("stopped after %v of calm, want the 2 s hold", d)
	}
	// Back within a minute: the hold doubles each time, up to its bound.
	for _, want := range []time.Duration{4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, 32 * time.Second} {
		round(ms(30))
		if d := calm(0); !within(d, want) {
			t.Fatalf("stopped after %v of calm, want %v", d, want)
		}
	}
	// Back after a long calm: the default hold again.
	for range 3100 { // 62 s
		round(ms(5))
	}
	round(ms(30))
	if d := calm(0); !within(d, 2*time.Second) {
		t.Fatalf("after a long calm, stopped after %v, want the 2 s hold", d)
	}
	if got, want := s.spells.Load(), uint64(7); got != want {
		t.Fatalf("%d spells counted, want %d", got, want)
	}
	if s.ticks.Load() == 0 {
		t.Fatal("no ticks counted while shedding")
	}

	off := &shedder{cfg: ShedConfig{Off: true}.withDefaults()}
	off.observe(ms(60), 1, now)
	if off.complexity() != -1 || off.spells.Load() != 0 {
		t.Fatal("Shed.Off shed")
	}
}

// A tick whose encodes are a small share of its work (a large room's,
// which is its sends) neither starts shedding, however late it ends, nor
// keeps it on: shedding would not bring it back.
func TestShedderHeedsOnlyTicksItCanRelieve(t *testing.T) {
	s := &shedder{cfg: ShedConfig{}.withDefaults()}
	now := time.Unix(1_700_000_000, 0)
	tick := func(used time.Duration, encodeShare float64) bool {
		now = now.Add(5 * time.Millisecond)
		s.observe(used, encodeShare, now)
		return s.complexity() >= 0
	}
	for range 2000 {
		if tick(17*time.Millisecond, 0.04) {
			t.Fatal("shedding for ticks that are their sends")
		}
	}
	if !tick(17*time.Millisecond, shedMinEncodeShare) {
		t.Fatal("a late tick whose encodes were an eighth of its work did not start shedding")
	}
	start := now
	for tick(17*time.Millisecond, 0.04) {
		if now.Sub(start) > time.Minute {
			t.Fatal("ticks that are their sends kept shedding on")
		}
	}
	if d := now.Sub(start); d < 2*time.Second {
		t.Fatalf("stopped after %v, before the 2 s hold", d)
	}
}

// The phases' clocks hand the shedder each tick's encode share: most of a
// small room's work, little of one whose sends take long (a listener's
// sink here that takes 20 ms, as a large room's sends can).
func TestTickReportsItsEncodeShare(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	quick := newTwin(t, start, func(header, payload []byte) error { return nil })
	slow := newTwin(t, start, func(header, payload []byte) error {
		time.Sleep(20 * time.Millisecond)
		return nil
	})
	enc, err := codec.NewEncoder(codec.EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	voice := signal.NewVoice(3)
	var pcm [codec.FrameSamples]int16
	most, least := 0.0, 1.0 // quick's, slow's
	for k := 1; k <= 30; k++ {
		voice.Fill(pcm[:])
		pkt := opusPacket(t, enc, pcm[:], k, 9)
		slot := start.Add(time.Duration(k) * TickInterval)
		for _, w := range []*twin{quick, slow} {
			w.clock.Set(slot.Add(-5 * time.Millisecond))
			if err := w.speaker.WriteRTP(pkt); err != nil {
				t.Fatal(err)
			}
			w.clock.Set(slot)
			_, share, ran := w.e.tickPhase(w.e.phases[0], 0)
			if !ran || share < 0 || share > 1 {
				t.Fatalf("tick %d: encode share %v (ran %v)", k, share, ran)
			}
			if w == quick {
				most = max(most, share)
			} else {
				least = min(least, share)
			}
		}
	}
	// Extremes over 30 ticks, so that a tick the machine held up in the
	// wrong place cannot decide it.
	if most < shedMinEncodeShare {
		t.Errorf("a small room's encodes were at most %.3f of its work; want at least %v", most, shedMinEncodeShare)
	}
	if least >= shedMinEncodeShare {
		t.Errorf("a room whose sends took 20 ms: encodes at least %.3f of its work; want under %v", least, shedMinEncodeShare)
	}
	t.Logf("encode share: small room up to %.2f, slow sends down to %.4f", most, least)
}

// An encoder whose tier asks for less than the shedding complexity keeps
// its own; the others go down to it while shedding and back after.
func TestShedComplexityIsAnUpperBound(t *testing.T) {
	var c counters
	c.init()
	var pcm [codec.FrameSamples]int16
	for _, tc := range []struct{ tier, most, want int }{
		{5, -1, 5}, {5, 1, 1}, {5, 3, 3}, {0, 1, 0}, {0, -1, 0}, {2, 3, 2},
	} {
		enc, err := codec.NewEncoder(codec.EncoderConfig{})
		if err != nil {
			t.Fatal(err)
		}
		if err := enc.SetComplexity(tc.tier); err != nil {
			t.Fatal(err)
		}
		o := newOutput(enc, 0)
		o.encode(pcm[:], 1, 1, &c) // shed first, then tc's
		o.encode(pcm[:], 2, tc.most, &c)
		if got := enc.Config().Complexity; got != tc.want || o.cx != tc.want {
			t.Errorf("tier at %d, shedding to %d: encoder at %d (noted %d), want %d", tc.tier, tc.most, got, o.cx, tc.want)
		}
	}
}

// While the engine sheds, a room's encoders run at the shedding
// complexity and back at their tier's after; what the listener hears goes on unbroken. Two rooms on two
// engines take the same speech; one sheds every other second. The
// listener's audio in that room is scored frame by frame against the
// other's: no frame may drop (a click or a gap at a switch), and the
// frames encoded at complexity 1 stay close to those at 5.
func TestSheddingLowersComplexityAndKeepsTheStream(t *testing.T) {
	const ticks = 500
	type side struct {
		*twin
		dec   *codec.Decoder
		heard []int16
		seqs  []uint16
	}
	start := time.Unix(1_700_000_000, 0)
	newSide := func() *side {
		s := &side{}
		var err error
		if s.dec, err = codec.NewDecoder(); err != nil {
			t.Fatal(err)
		}
		var pcm [codec.MaxFrameSamples]int16
		s.twin = newTwin(t, start, func(header, payload []byte) error {
			var h rtp.Header
			if _, err := h.Unmarshal(header); err != nil {
				t.Fatal(err)
			}
			n, err := s.dec.Decode(payload, pcm[:])
			if err != nil {
				t.Fatal(err)
			}
			s.heard = append(s.heard, pcm[:n]...)
			s.seqs = append(s.seqs, h.SequenceNumber)
			return nil
		})
		return s
	}
	clean, shed := newSide(), newSide()
	enc, err := codec.NewEncoder(codec.EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	voice := signal.NewVoice(3)
	var pcm [codec.FrameSamples]int16
	for k := 1; k <= ticks; k++ {
		voice.Fill(pcm[:])
		pkt := opusPacket(t, enc, pcm[:], k, 9)
		slot := start.Add(time.Duration(k) * TickInterval)
		shedding := k/50%2 == 1
		shed.e.shed.on.Store(shedding)
		for _, s := range []*side{clean, shed} {
			s.clock.Set(slot.Add(-5 * time.Millisecond))
			if err := s.speaker.WriteRTP(pkt); err != nil {
				t.Fatal(err)
			}
			s.clock.Set(slot)
			s.e.tickPhase(s.e.phases[0], 0)
		}
		want := 5
		if shedding {
			want = 1
		}
		if got := shed.r.outputs[0].enc.Config().Complexity; got != want {
			t.Fatalf("tick %d (shedding %v): the room's encoder at complexity %d, want %d", k, shedding, got, want)
		}
		if got := clean.r.outputs[0].enc.Config().Complexity; got != 5 {
			t.Fatalf("tick %d: the room that does not shed encoded at complexity %d", k, got)
		}
	}
	if len(shed.seqs) != len(clean.seqs) || len(shed.seqs) < ticks-10 {
		t.Fatalf("the listener got %d packets while shedding, %d without", len(shed.seqs), len(clean.seqs))
	}
	for i := 1; i < len(shed.seqs); i++ {
		if shed.seqs[i] != shed.seqs[i-1]+1 {
			t.Fatalf("sequence number %d after %d", shed.seqs[i], shed.seqs[i-1])
		}
	}
	segs := signal.ScoreFrames(clean.heard, shed.heard, 0, codec.FrameSamples, codec.SampleRate/2)
	if len(segs) < 100 {
		t.Fatalf("only %d speech frames to score", len(segs))
	}
	snr := make([]float64, len(segs))
	for i, s := range segs {
		snr[i] = s.SNR
	}
	slices.Sort(snr)
	t.Logf("%d speech frames against the room that never shed: SNR min %.1f, median %.1f dB; %d under %d dB",
		len(segs), snr[0], snr[len(snr)/2], signal.DistortedFrames(segs), signal.DistortedBelowDB)
	if d := signal.DroppedFrames(segs); d > 0 {
		t.Fatalf("%d frames dropped or broken across the switches", d)
	}
	if snr[len(snr)/2] < 15 {
		t.Fatalf("median SNR %.1f dB against the room that never shed; want at least 15", snr[len(snr)/2])
	}
}

// With MaxTickLoad set, an engine that sheds load takes no new rooms or
// joins: its ticks look cheaper than the encodes it goes back to. Without
// it, shedding refuses nothing.
func TestSheddingRefusesGrowthUnderMaxTickLoad(t *testing.T) {
	capped := New(Config{Workers: 1, MaxTickLoad: 0.9})
	defer capped.Close()
	open := New(Config{Workers: 1})
	defer open.Close()
	for _, e := range []*Engine{capped, open} {
		if _, err := e.NewRoom("a", RoomConfig{}); err != nil {
			t.Fatal(err)
		}
		e.shed.on.Store(true)
	}
	if _, err := capped.NewRoom("b", RoomConfig{}); !errors.Is(err, ErrOverloaded) {
		t.Errorf("new room while shedding under MaxTickLoad: %v, want ErrOverloaded", err)
	}
	r, _ := capped.Room("a")
	if _, err := r.Join("p", ParticipantConfig{}); !errors.Is(err, ErrOverloaded) {
		t.Errorf("join while shedding under MaxTickLoad: %v, want ErrOverloaded", err)
	}
	if _, err := open.NewRoom("b", RoomConfig{}); err != nil {
		t.Errorf("new room while shedding, no MaxTickLoad: %v", err)
	}
	capped.shed.on.Store(false)
	if _, err := r.Join("p", ParticipantConfig{}); err != nil {
		t.Errorf("join once shedding stopped: %v", err)
	}
}
