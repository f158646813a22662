package mixer

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

const frame = 960 // 20 ms at 48 kHz, the default FrameSamples

// fillConst sets every sample of pcm to v.
func fillConst(pcm []int16, v int16) {
	for i := range pcm {
		pcm[i] = v
	}
}

// fillSine writes a sine of freq Hz and amplitude amp at 48 kHz, from sample
// offset start (so consecutive ticks join without a phase jump).
func fillSine(pcm []int16, freq, amp float64, start int) {
	for i := range pcm {
		pcm[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(start+i)/48000))
	}
}

// talk makes s present with a constant frame at v.
func talk(s *Source, v int16) {
	s.Present = true
	fillConst(s.PCM, v)
}

// room returns the room mix through a fresh limiter.
func room(m *Mixer) []int16 {
	var lim Limiter
	out := make([]int16, frame)
	m.Room(&lim, out)
	return out
}

// mixMinus returns s's mix-minus through a fresh limiter.
func mixMinus(m *Mixer, s *Source) []int16 {
	var lim Limiter
	out := make([]int16, frame)
	m.MixMinus(s, &lim, out)
	return out
}

// sumOf adds frames sample by sample with the given gains, in float64.
func sumOf(gains []float64, frames ...[]int16) []float64 {
	out := make([]float64, frame)
	for k, f := range frames {
		for i, v := range f {
			out[i] += gains[k] * float64(v)
		}
	}
	return out
}

func ones(n int) []float64 {
	g := make([]float64, n)
	for i := range g {
		g[i] = 1
	}
	return g
}

// assertNear checks got against want sample by sample within tol.
func assertNear(t *testing.T, what string, got []int16, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol {
			t.Fatalf("%s: sample %d = %d, want %.2f (±%g)", what, i, got[i], want[i], tol)
		}
	}
}

// mixedSet returns which sources are in this tick's mix, as a bit mask.
func mixedSet(srcs []*Source) uint64 {
	var b uint64
	for i, s := range srcs {
		if s.Mixed() {
			b |= 1 << i
		}
	}
	return b
}

func TestConfigDefaults(t *testing.T) {
	c := New(Config{}).Config()
	want := Config{FrameSamples: 960, TopN: 4, HangoverTicks: 50, SilenceLevel: 90, SwitchMarginDB: 6}
	if c != want {
		t.Fatalf("defaults = %+v, want %+v", c, want)
	}
}

func TestSumAndMixMinus(t *testing.T) {
	m := New(Config{})
	a, b, c := m.AddSource(), m.AddSource(), m.AddSource()
	a.Present, b.Present, c.Present = true, true, true
	fillConst(a.PCM, 1000)
	fillSine(b.PCM, 440, 5000, 0)
	fillSine(c.PCM, 1000, 3000, 0)
	// Make c differ from a pure tone so no sample is accidentally symmetric.
	for i := range c.PCM {
		c.PCM[i] -= 700
	}
	m.Mix()

	if got := m.MixedCount(); got != 3 {
		t.Fatalf("MixedCount = %d, want 3", got)
	}
	for i, s := range []*Source{a, b, c} {
		if !s.Mixed() {
			t.Fatalf("source %d not mixed", i)
		}
	}
	// Peaks stay below the limiter's ceiling and gains are 1, so every sum
	// of int16 is exact in float32: outputs must match to the sample.
	assertNear(t, "room", room(m), sumOf(ones(3), a.PCM, b.PCM, c.PCM), 0)
	assertNear(t, "mix-minus a", mixMinus(m, a), sumOf(ones(2), b.PCM, c.PCM), 0)
	assertNear(t, "mix-minus b", mixMinus(m, b), sumOf(ones(2), a.PCM, c.PCM), 0)
	assertNear(t, "mix-minus c", mixMinus(m, c), sumOf(ones(2), a.PCM, b.PCM), 0)

	// A nil source (a pure listener) hears the room.
	assertNear(t, "mix-minus nil", mixMinus(m, nil), sumOf(ones(3), a.PCM, b.PCM, c.PCM), 0)

	// Next tick with new audio: nothing of the previous tick lingers.
	fillSine(b.PCM, 440, 5000, frame)
	fillConst(c.PCM, -1234)
	m.Mix()
	assertNear(t, "room tick 2", room(m), sumOf(ones(3), a.PCM, b.PCM, c.PCM), 0)
	assertNear(t, "mix-minus a tick 2", mixMinus(m, a), sumOf(ones(2), b.PCM, c.PCM), 0)
}

func TestSetGain(t *testing.T) {
	m := New(Config{})
	a, b, c := m.AddSource(), m.AddSource(), m.AddSource()
	if a.Gain() != 1 {
		t.Fatalf("new source gain = %v, want 1", a.Gain())
	}
	a.Present, b.Present, c.Present = true, true, true
	fillConst(a.PCM, 1000)
	fillSine(b.PCM, 440, 5000, 0)
	fillConst(c.PCM, -2000)

	a.SetGain(0.25)
	c.SetGain(1.5)
	if a.Gain() != 0.25 {
		t.Fatalf("Gain = %v, want 0.25", a.Gain())
	}
	m.Mix()
	g := []float64{0.25, 1, 1.5}
	// 0.25 and 1.5 are exact in float32 and the products are integers.
	assertNear(t, "room", room(m), sumOf(g, a.PCM, b.PCM, c.PCM), 0)
	assertNear(t, "mix-minus b", mixMinus(m, b), sumOf([]float64{0.25, 1.5}, a.PCM, c.PCM), 0)
	assertNear(t, "mix-minus a", mixMinus(m, a), sumOf([]float64{1, 1.5}, b.PCM, c.PCM), 0)

	// An inexact gain on a sine: within one LSB (float32 and truncation).
	b.SetGain(0.3)
	m.Mix()
	assertNear(t, "room gain 0.3", room(m), sumOf([]float64{0.25, 0.3, 1.5}, a.PCM, b.PCM, c.PCM), 1)
	assertNear(t, "mix-minus c gain 0.3", mixMinus(m, c), sumOf([]float64{0.25, 0.3}, a.PCM, b.PCM), 1)

	// Gain 0 takes the source out of the mix altogether.
	c.SetGain(0)
	m.Mix()
	if c.Mixed() {
		t.Fatal("source with gain 0 is mixed")
	}
	if c.Level() != SilentLevel {
		t.Fatalf("gain-0 source level = %d, want %d", c.Level(), SilentLevel)
	}
	assertNear(t, "room gain 0", room(m), sumOf([]float64{0.25, 0.3}, a.PCM, b.PCM), 1)
}

func TestSilentSourcesSkipped(t *testing.T) {
	m := New(Config{})
	a := m.AddSource()       // talking
	absent := m.AddSource()  // loud PCM, but Present=false
	zero := m.AddSource()    // present, all-zero PCM
	faint := m.AddSource()   // present, level 90 = SilenceLevel: silent
	audible := m.AddSource() // present, level 84: quiet but mixed
	talk(a, 3000)
	fillConst(absent.PCM, 20000)
	absent.Present = false
	talk(zero, 0)
	talk(faint, 1)   // -90.3 dBov
	talk(audible, 2) // -84.3 dBov
	m.Mix()

	for _, tc := range []struct {
		name  string
		s     *Source
		mixed bool
		level uint8
	}{
		{"talking", a, true, 21}, // 20·log10(32768/3000) = 20.8
		{"absent", absent, false, SilentLevel},
		{"zero", zero, false, SilentLevel},
		{"faint", faint, false, 90},
		{"audible", audible, true, 84},
	} {
		if tc.s.Mixed() != tc.mixed {
			t.Errorf("%s: Mixed() = %v, want %v", tc.name, tc.s.Mixed(), tc.mixed)
		}
		if tc.s.Level() != tc.level {
			t.Errorf("%s: Level() = %d, want %d", tc.name, tc.s.Level(), tc.level)
		}
	}
	if m.MixedCount() != 2 {
		t.Fatalf("MixedCount = %d, want 2", m.MixedCount())
	}
	want := sumOf(ones(2), a.PCM, audible.PCM)
	assertNear(t, "room", room(m), want, 0)
	// A source that is not in the mix hears the whole mix, which must not
	// contain its own (absent) audio.
	assertNear(t, "mix-minus absent", mixMinus(m, absent), want, 0)
	assertNear(t, "mix-minus zero", mixMinus(m, zero), want, 0)

	// Everyone silent: the mix is digital silence.
	a.Present = false
	audible.Present = false
	m.Mix()
	if m.MixedCount() != 0 {
		t.Fatalf("MixedCount = %d, want 0", m.MixedCount())
	}
	assertNear(t, "silent room", room(m), make([]float64, frame), 0)
}

func TestLevel(t *testing.T) {
	pcm := func(f func([]int16)) []int16 {
		p := make([]int16, frame)
		f(p)
		return p
	}
	for _, tc := range []struct {
		name string
		pcm  []int16
		want uint8
	}{
		// RFC 6464: level = -dBov, where 0 dBov is a full-scale square wave.
		// A full-scale sine's RMS is 1/√2 of that: -3.01 dBov.
		{"full-scale sine", pcm(func(p []int16) { fillSine(p, 1000, 32767, 0) }), 3},
		{"-20 dBFS sine", pcm(func(p []int16) { fillSine(p, 1000, 3276.7, 0) }), 23},
		{"-20 dBFS sine 440 Hz", pcm(func(p []int16) { fillSine(p, 440, 3276.7, 123) }), 23},
		{"-40 dBFS sine", pcm(func(p []int16) { fillSine(p, 1000, 327.67, 0) }), 43},
		{"full-scale square", pcm(func(p []int16) {
			for i := range p {
				p[i] = 32767
				if i%2 == 1 {
					p[i] = -32768
				}
			}
		}), 0},
		{"min int16 DC", pcm(func(p []int16) { fillConst(p, -32768) }), 0},
		{"DC 3000", pcm(func(p []int16) { fillConst(p, 3000) }), 21}, // 20.77 rounds up
		{"DC 1", pcm(func(p []int16) { fillConst(p, 1) }), 90},
		// One LSB in a frame: 10·log10(1/960) - 90.3 = -120.1 dBov.
		{"single LSB", pcm(func(p []int16) { p[500] = 1 }), 120},
		{"silence", make([]int16, frame), SilentLevel},
		{"empty", nil, SilentLevel},
	} {
		if got := Level(tc.pcm); got != tc.want {
			t.Errorf("%s: Level = %d, want %d", tc.name, got, tc.want)
		}
	}

	// The mixer reports the same level per source.
	m := New(Config{})
	s := m.AddSource()
	s.Present = true
	fillSine(s.PCM, 1000, 32767, 0)
	m.Mix()
	if s.Level() != 3 {
		t.Fatalf("source Level() = %d, want 3", s.Level())
	}
	fillSine(s.PCM, 1000, 3276.7, 0)
	m.Mix()
	if s.Level() != 23 {
		t.Fatalf("source Level() = %d, want 23", s.Level())
	}
	s.Present = false
	m.Mix()
	if s.Level() != SilentLevel {
		t.Fatalf("absent source Level() = %d, want %d", s.Level(), SilentLevel)
	}
}

func TestTopNLoudest(t *testing.T) {
	m := New(Config{TopN: 4})
	// Six talkers 6 dB apart, added in an order unrelated to loudness.
	amps := []int16{1000, 8000, 250, 4000, 500, 2000}
	srcs := make([]*Source, len(amps))
	for i, a := range amps {
		srcs[i] = m.AddSource()
		talk(srcs[i], a)
	}
	for tick := 0; tick < 3; tick++ {
		m.Mix()
		if m.MixedCount() != 4 {
			t.Fatalf("tick %d: MixedCount = %d, want 4", tick, m.MixedCount())
		}
		for i, s := range srcs {
			want := amps[i] >= 1000
			if s.Mixed() != want || s.Selected() != want {
				t.Fatalf("tick %d: source at %d: Mixed=%v Selected=%v, want %v",
					tick, amps[i], s.Mixed(), s.Selected(), want)
			}
		}
		// Only the four loudest are in the sum: 8000+4000+2000+1000.
		out := room(m)
		for i, v := range out {
			if v != 15000 {
				t.Fatalf("tick %d: room[%d] = %d, want 15000", tick, i, v)
			}
		}
		// An unselected talker hears all four; a selected one the other three.
		for i, v := range mixMinus(m, srcs[2]) {
			if v != 15000 {
				t.Fatalf("mix-minus of unmixed [%d] = %d, want 15000", i, v)
			}
		}
		for i, v := range mixMinus(m, srcs[1]) {
			if v != 7000 {
				t.Fatalf("mix-minus of loudest [%d] = %d, want 7000", i, v)
			}
		}
	}
}

func TestSwitchMargin(t *testing.T) {
	m := New(Config{TopN: 4})
	holders := []int16{8000, 6000, 4000, 2000} // quietest is level 24
	srcs := make([]*Source, 0, 5)
	for _, a := range holders {
		s := m.AddSource()
		talk(s, a)
		srcs = append(srcs, s)
	}
	newcomer := m.AddSource()
	srcs = append(srcs, newcomer)
	quietest := srcs[3]
	m.Mix()

	// 5 dB louder than the quietest holder (level 19): below the margin.
	talk(newcomer, 3557)
	for tick := 0; tick < 20; tick++ {
		m.Mix()
		if newcomer.Level() != 19 || quietest.Level() != 24 {
			t.Fatalf("levels %d/%d, want 19/24", newcomer.Level(), quietest.Level())
		}
		if newcomer.Mixed() || !quietest.Mixed() {
			t.Fatalf("tick %d: newcomer 5 dB louder took a slot", tick)
		}
	}
	// Exactly the margin, 6 dB louder (level 18): takes the quietest
	// holder's slot ("louder by this much").
	talk(newcomer, 4000)
	m.Mix()
	if newcomer.Level() != 18 {
		t.Fatalf("newcomer level %d, want 18", newcomer.Level())
	}
	if !newcomer.Mixed() || quietest.Mixed() || quietest.Selected() {
		t.Fatalf("newcomer 6 dB louder: newcomer mixed=%v, displaced mixed=%v selected=%v",
			newcomer.Mixed(), quietest.Mixed(), quietest.Selected())
	}
	for i := 0; i < 3; i++ {
		if !srcs[i].Mixed() {
			t.Fatalf("louder holder %d lost its slot", i)
		}
	}
	if m.MixedCount() != 4 {
		t.Fatalf("MixedCount = %d, want 4", m.MixedCount())
	}
}

func TestNoFlappingNearEqual(t *testing.T) {
	m := New(Config{TopN: 4})
	var srcs []*Source
	for _, a := range []int16{8000, 6000, 4000} {
		s := m.AddSource()
		talk(s, a)
		srcs = append(srcs, s)
	}
	d, e := m.AddSource(), m.AddSource()
	srcs = append(srcs, d, e)
	// d and e trade places every tick, about 1 dB apart.
	const lo, hi = 2000, 2245
	changes, prev := 0, uint64(0)
	for tick := 0; tick < 300; tick++ {
		if tick%2 == 0 {
			talk(d, hi)
			talk(e, lo)
		} else {
			talk(d, lo)
			talk(e, hi)
		}
		m.Mix()
		if m.MixedCount() != 4 {
			t.Fatalf("tick %d: MixedCount = %d, want 4", tick, m.MixedCount())
		}
		set := mixedSet(srcs)
		if tick > 0 && set != prev {
			changes++
		}
		prev = set
	}
	if changes != 0 {
		t.Fatalf("selection changed %d times in 300 ticks between near-equal talkers", changes)
	}
	if !d.Mixed() || e.Mixed() {
		t.Fatalf("d (first louder) should hold the slot: d=%v e=%v", d.Mixed(), e.Mixed())
	}
}

func TestHangover(t *testing.T) {
	const hang = 10
	setup := func() (*Mixer, []*Source, *Source) {
		m := New(Config{TopN: 4, HangoverTicks: hang})
		var holders []*Source
		for _, a := range []int16{8000, 6000, 4000, 2000} {
			s := m.AddSource()
			talk(s, a)
			holders = append(holders, s)
		}
		// A contender 3 dB quieter than the quietest holder: never clearly
		// louder than a talking holder, but always louder than a pause.
		contender := m.AddSource()
		talk(contender, 1500)
		for i := 0; i < 5; i++ {
			m.Mix()
			if contender.Mixed() {
				t.Fatal("contender took a slot from talking holders")
			}
		}
		return m, holders, contender
	}

	t.Run("expires", func(t *testing.T) {
		m, holders, contender := setup()
		a := holders[0]
		a.Present = false
		for k := 1; k <= hang; k++ {
			m.Mix()
			if !a.Selected() || a.Mixed() {
				t.Fatalf("silent tick %d: paused holder Selected=%v Mixed=%v, want true/false",
					k, a.Selected(), a.Mixed())
			}
			if contender.Mixed() {
				t.Fatalf("silent tick %d of %d: contender took a paused holder's slot within the hangover", k, hang)
			}
			if m.MixedCount() != 3 {
				t.Fatalf("silent tick %d: MixedCount = %d, want 3", k, m.MixedCount())
			}
		}
		m.Mix() // silent tick hang+1: the slot is free
		if a.Selected() {
			t.Fatalf("holder still selected after %d silent ticks", hang+1)
		}
		if !contender.Mixed() {
			t.Fatal("contender did not get the freed slot")
		}
		// a comes back much louder than the contender and takes a slot back.
		a.Present = true
		m.Mix()
		if !a.Mixed() || contender.Mixed() {
			t.Fatalf("returning loud talker: a mixed=%v contender mixed=%v", a.Mixed(), contender.Mixed())
		}
	})

	t.Run("resumes", func(t *testing.T) {
		m, holders, contender := setup()
		a := holders[0]
		for round := 0; round < 5; round++ {
			a.Present = false
			for k := 0; k < hang; k++ { // pauses up to the hangover
				m.Mix()
				if contender.Mixed() || !a.Selected() {
					t.Fatalf("round %d pause tick %d: contender mixed=%v, a selected=%v",
						round, k, contender.Mixed(), a.Selected())
				}
			}
			a.Present = true
			m.Mix()
			if !a.Mixed() {
				t.Fatalf("round %d: a not mixed on resuming within the hangover", round)
			}
		}
	})

	t.Run("no contention", func(t *testing.T) {
		m := New(Config{TopN: 4, HangoverTicks: hang})
		a := m.AddSource()
		talk(a, 4000)
		m.Mix()
		a.Present = false
		for k := 1; k <= hang; k++ {
			m.Mix()
			if !a.Selected() {
				t.Fatalf("deselected after %d silent ticks, hangover is %d", k, hang)
			}
		}
		m.Mix()
		if a.Selected() {
			t.Fatalf("still selected after %d silent ticks", hang+1)
		}
	})
}

// checkNoWrap asserts out has in's sign wherever in is clearly non-zero and
// never the opposite sign.
func checkNoWrap(t *testing.T, what string, in []float64, out []int16) {
	t.Helper()
	for i, v := range in {
		o := float64(out[i])
		if o*v < 0 {
			t.Fatalf("%s: sample %d wrapped: in %.0f, out %d", what, i, v, out[i])
		}
		if math.Abs(v) >= 4 && o == 0 {
			t.Fatalf("%s: sample %d: in %.0f, out 0", what, i, v)
		}
	}
}

func TestLoudMixNoWrap(t *testing.T) {
	t.Run("DC", func(t *testing.T) {
		for _, v := range []int16{32767, -32768} {
			m := New(Config{})
			a, b, c := m.AddSource(), m.AddSource(), m.AddSource()
			talk(a, v)
			talk(b, v)
			talk(c, v)
			m.Mix()
			var lim, limMM Limiter
			out, mm := make([]int16, frame), make([]int16, frame)
			m.Room(&lim, out)
			m.MixMinus(a, &limMM, mm)
			for i := range out {
				if (v > 0 && (out[i] <= 0 || mm[i] <= 0)) || (v < 0 && (out[i] >= 0 || mm[i] >= 0)) {
					t.Fatalf("DC %d: sample %d wrapped: room %d, mix-minus %d", v, i, out[i], mm[i])
				}
			}
			if lim.Clipped == 0 || limMM.Clipped == 0 {
				t.Fatalf("DC %d: Clipped = %d/%d, want > 0", v, lim.Clipped, limMM.Clipped)
			}
			// Once the gain has come down, a steady loud input is held at the
			// ceiling by gain alone: nothing more is clipped.
			for tick := 0; tick < 5; tick++ {
				m.Mix()
				before := lim.Clipped
				m.Room(&lim, out)
				if lim.Clipped != before {
					t.Fatalf("DC %d tick %d: steady state clipped %d samples", v, tick, lim.Clipped-before)
				}
				for i, o := range out {
					if math.Abs(float64(o)) > ceiling+1 || math.Abs(float64(o)) < ceiling-100 {
						t.Fatalf("DC %d tick %d: sample %d = %d, want about ±%v", v, tick, i, o, ceiling)
					}
				}
			}
		}
	})

	t.Run("in-phase sines", func(t *testing.T) {
		m := New(Config{})
		a, b := m.AddSource(), m.AddSource()
		a.Present, b.Present = true, true
		var lim, limA Limiter
		out, mmA := make([]int16, frame), make([]int16, frame)
		for tick := 0; tick < 20; tick++ {
			fillSine(a.PCM, 440, 32767, tick*frame)
			fillSine(b.PCM, 440, 32767, tick*frame)
			m.Mix()
			m.Room(&lim, out)
			checkNoWrap(t, fmt.Sprintf("room tick %d", tick), sumOf(ones(2), a.PCM, b.PCM), out)
			// A single full-scale source alone fits: its mix-minus is b itself
			// up to the limiter's ceiling, and also never wraps.
			m.MixMinus(a, &limA, mmA)
			checkNoWrap(t, fmt.Sprintf("mix-minus tick %d", tick), sumOf(ones(1), b.PCM), mmA)
			if tick == 0 && lim.Clipped == 0 {
				t.Fatal("first loud frame: Clipped = 0, want > 0")
			}
		}
		// After the attack, the output peaks near the ceiling, well used.
		var peak int16
		for _, v := range out {
			peak = max(peak, v, -v)
		}
		if peak < ceiling-500 {
			t.Fatalf("steady loud peak = %d, want near %v", peak, ceiling)
		}
	})

	t.Run("release is gradual", func(t *testing.T) {
		m := New(Config{})
		a, b := m.AddSource(), m.AddSource()
		var lim Limiter
		out := make([]int16, frame)
		talk(a, 32767)
		talk(b, 32767)
		for tick := 0; tick < 5; tick++ {
			m.Mix()
			m.Room(&lim, out)
		}
		clipped := lim.Clipped
		// Then a moderate steady input well below the ceiling: the limiter
		// must bring its gain back up by at most releasePerFrame per frame,
		// as a smooth ramp, and reach unity.
		const quiet = 10000
		b.Present = false
		talk(a, quiet)
		var stream []int16
		frameEnd := []float64{float64(out[frame-1]) / (2 * 32767)} // gain at the end of the loud part
		for tick := 0; tick < 40; tick++ {
			m.Mix()
			m.Room(&lim, out)
			stream = append(stream, out...)
			frameEnd = append(frameEnd, float64(out[frame-1])/quiet)
		}
		if lim.Clipped != clipped {
			t.Fatalf("release clipped %d samples", lim.Clipped-clipped)
		}
		if g := float64(stream[0]) / quiet; g > 0.6 {
			t.Fatalf("gain jumped to %.3f at the start of release, want about %.3f", g, ceiling/65534.0)
		}
		for i := 1; i < len(stream); i++ {
			if d := int(stream[i]) - int(stream[i-1]); d < 0 || d > 2 {
				t.Fatalf("release sample %d: step %d -> %d (want monotone, ≤ 2 per sample)",
					i, stream[i-1], stream[i])
			}
		}
		for k := 1; k < len(frameEnd); k++ {
			// One LSB of slack for truncation on each side.
			if r := frameEnd[k] / frameEnd[k-1]; r > releasePerFrame+2.0/quiet/frameEnd[k-1] {
				t.Fatalf("frame %d: gain rose ×%.4f in one frame, more than %v", k, r, releasePerFrame)
			}
		}
		if frameEnd[10] > 0.8 {
			t.Fatalf("gain %.3f after 10 release frames: released too fast", frameEnd[10])
		}
		for i, v := range stream[len(stream)-frame:] {
			if v != quiet {
				t.Fatalf("after 40 frames, sample %d = %d, want unity (%d)", i, v, quiet)
			}
		}
	})
}

func TestAddRemoveWhileRunning(t *testing.T) {
	m := New(Config{TopN: 2})
	a, b := m.AddSource(), m.AddSource()
	talk(a, 8000)
	talk(b, 4000)
	m.Mix()
	if !a.Mixed() || !b.Mixed() {
		t.Fatal("a and b should be mixed")
	}

	// c joins mid-run, 3 dB quieter than b: no slot free, no clear margin.
	c := m.AddSource()
	if m.Sources() != 3 {
		t.Fatalf("Sources = %d, want 3", m.Sources())
	}
	if c.Level() != SilentLevel || c.Mixed() {
		t.Fatal("a new source must start silent and unmixed")
	}
	talk(c, 2900)
	m.Mix()
	if c.Mixed() {
		t.Fatal("c took a slot without a free one or the margin")
	}

	// b leaves: its slot is freed for c on the next tick.
	m.RemoveSource(b)
	if m.Sources() != 2 || b.Mixed() || b.Selected() {
		t.Fatalf("after remove: Sources=%d, b mixed=%v selected=%v", m.Sources(), b.Mixed(), b.Selected())
	}
	m.RemoveSource(b) // twice is harmless
	if m.Sources() != 2 {
		t.Fatalf("second remove changed Sources to %d", m.Sources())
	}
	m.Mix()
	if !a.Mixed() || !c.Mixed() || m.MixedCount() != 2 {
		t.Fatalf("after b left: a=%v c=%v count=%d", a.Mixed(), c.Mixed(), m.MixedCount())
	}
	assertNear(t, "room without b", room(m), sumOf(ones(2), a.PCM, c.PCM), 0)
	assertNear(t, "removed b hears the room", mixMinus(m, b), sumOf(ones(2), a.PCM, c.PCM), 0)
	assertNear(t, "mix-minus a", mixMinus(m, a), sumOf(ones(1), c.PCM), 0)

	// Remove the first source (the last one moves into its place), then the
	// moved one: the index bookkeeping must follow.
	m.RemoveSource(a)
	m.RemoveSource(c)
	if m.Sources() != 0 {
		t.Fatalf("Sources = %d, want 0", m.Sources())
	}
	m.Mix()
	if m.MixedCount() != 0 {
		t.Fatalf("MixedCount = %d with no sources", m.MixedCount())
	}
	assertNear(t, "empty room", room(m), make([]float64, frame), 0)

	// Both slots were released with their holders: newcomers get them.
	d, e := m.AddSource(), m.AddSource()
	talk(d, 1000)
	talk(e, 500)
	m.Mix()
	if !d.Mixed() || !e.Mixed() {
		t.Fatalf("slots not released on remove: d=%v e=%v", d.Mixed(), e.Mixed())
	}
	assertNear(t, "room d+e", room(m), sumOf(ones(2), d.PCM, e.PCM), 0)
}

func TestSetTopN(t *testing.T) {
	m := New(Config{TopN: 4})
	amps := []int16{250, 8000, 1000, 4000, 500, 2000}
	srcs := make([]*Source, len(amps))
	for i, a := range amps {
		srcs[i] = m.AddSource()
		talk(srcs[i], a)
	}
	check := func(n int, minAmp int16) {
		t.Helper()
		m.Mix()
		if m.MixedCount() != n {
			t.Fatalf("TopN %d: MixedCount = %d", n, m.MixedCount())
		}
		sum := 0
		for i, s := range srcs {
			want := amps[i] >= minAmp
			if s.Mixed() != want {
				t.Fatalf("TopN %d: source at %d mixed=%v, want %v", n, amps[i], s.Mixed(), want)
			}
			if want {
				sum += int(amps[i])
			}
		}
		for i, v := range room(m) {
			if int(v) != sum {
				t.Fatalf("TopN %d: room[%d] = %d, want %d", n, i, v, sum)
			}
		}
	}
	check(4, 1000)
	m.SetTopN(2)
	if m.Config().TopN != 2 {
		t.Fatalf("Config().TopN = %d, want 2", m.Config().TopN)
	}
	check(2, 4000)
	m.SetTopN(5)
	check(5, 500)
	m.SetTopN(0)
	m.SetTopN(-3)
	if m.Config().TopN != 5 {
		t.Fatalf("SetTopN(0/-3) changed TopN to %d", m.Config().TopN)
	}
	check(5, 500)
	m.SetTopN(1)
	check(1, 8000)
}

// speech fills frames with a deterministic speech-like signal: a voiced
// tone with a few harmonics, a syllable-rate envelope and some noise.
func speech(seed uint64, frames [][]int16) {
	r := rand.New(rand.NewPCG(seed, 1))
	f0 := 90 + r.Float64()*150
	amp := 2000 + r.Float64()*8000
	syl := 3 + r.Float64()*3
	ph := r.Float64() * 2 * math.Pi
	n := 0
	for _, f := range frames {
		for i := range f {
			t := float64(n) / 48000
			env := 0.15 + 0.85*math.Abs(math.Sin(2*math.Pi*syl*t+ph))
			v := math.Sin(2*math.Pi*f0*t) + 0.5*math.Sin(4*math.Pi*f0*t) + 0.25*math.Sin(6*math.Pi*f0*t)
			f[i] = int16(amp * env * (0.6*v + 0.1*(r.Float64()*2-1)))
			n++
		}
	}
}

// tickAll runs one tick: Mix, a mix-minus per mixed source, the room.
// It returns how many outputs it made.
func tickAll(m *Mixer, srcs []*Source, lims []Limiter, roomLim *Limiter, out []int16) int {
	m.Mix()
	n := 1
	for i, s := range srcs {
		if s.Mixed() {
			m.MixMinus(s, &lims[i], out)
			n++
		}
	}
	m.Room(roomLim, out)
	return n
}

// speakers makes a mixer with n talking sources, each with ticks frames of
// its own speech-like audio.
func speakers(n, ticks int) (*Mixer, []*Source, [][][]int16) {
	m := New(Config{})
	srcs := make([]*Source, n)
	audio := make([][][]int16, n)
	for i := range srcs {
		srcs[i] = m.AddSource()
		srcs[i].Present = true
		audio[i] = make([][]int16, ticks)
		for k := range audio[i] {
			audio[i][k] = make([]int16, frame)
		}
		speech(uint64(i+1), audio[i])
	}
	return m, srcs, audio
}

func TestZeroAllocs(t *testing.T) {
	const ticks = 16
	m, srcs, audio := speakers(8, ticks)
	// Two more at full scale so the limiters' ramp path runs too.
	for i := 0; i < 2; i++ {
		s := m.AddSource()
		talk(s, 32767)
		srcs = append(srcs, s)
	}
	lims := make([]Limiter, len(srcs))
	var roomLim Limiter
	out := make([]int16, frame)
	k := 0
	setAudio := func() {
		for i, a := range audio {
			srcs[i].PCM = a[k%ticks]
		}
		k++
	}
	if got := testing.AllocsPerRun(100, func() {
		setAudio()
		tickAll(m, srcs, lims, &roomLim, out)
	}); got != 0 {
		t.Fatalf("a tick allocates %v times", got)
	}
	if roomLim.Clipped == 0 {
		t.Fatal("the loud sources never reached the limiter's clamp")
	}
	if got := testing.AllocsPerRun(100, func() { setAudio(); m.Mix() }); got != 0 {
		t.Fatalf("Mix allocates %v times", got)
	}
	var mixed *Source
	for _, s := range srcs {
		if s.Mixed() {
			mixed = s
		}
	}
	if mixed == nil {
		t.Fatal("nothing mixed")
	}
	if got := testing.AllocsPerRun(100, func() { m.MixMinus(mixed, &lims[0], out) }); got != 0 {
		t.Fatalf("MixMinus allocates %v times", got)
	}
	if got := testing.AllocsPerRun(100, func() { m.Room(&roomLim, out) }); got != 0 {
		t.Fatalf("Room allocates %v times", got)
	}
}

func BenchmarkMix(b *testing.B) {
	const ticks = 50 // one second of audio per speaker, looped
	for _, n := range []int{2, 8, 32} {
		b.Run(fmt.Sprintf("speakers=%d", n), func(b *testing.B) {
			m, srcs, audio := speakers(n, ticks)
			lims := make([]Limiter, n)
			var roomLim Limiter
			out := make([]int16, frame)
			outputs, k := 0, 0
			b.ReportAllocs()
			for b.Loop() {
				for i, a := range audio {
					srcs[i].PCM = a[k]
				}
				if k++; k == ticks {
					k = 0
				}
				outputs += tickAll(m, srcs, lims, &roomLim, out)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(outputs), "ns/output")
		})
	}
}
