package mixer

// Config holds a mixer's settings. The zero value works: every zero field
// takes the default written beside it.
type Config struct {
	FrameSamples int // samples per tick; default 960 (20 ms at 48 kHz)
	TopN         int // sources mixed at most; default 4
	// HangoverTicks keeps a selected source's slot through pauses this long;
	// default 50 ticks (1 s at 20 ms).
	HangoverTicks int
	// SilenceLevel: a frame at this RFC 6464 level or quieter is silent and
	// not summed; default 90 (-90 dBov, far below any microphone's noise).
	SilenceLevel uint8
	// SwitchMarginDB: a new source takes a full mix's quietest slot only when
	// louder than its holder by this much; default 6 dB.
	SwitchMarginDB uint8
}

func (c Config) withDefaults() Config {
	if c.FrameSamples == 0 {
		c.FrameSamples = 960
	}
	if c.TopN == 0 {
		c.TopN = 4
	}
	if c.HangoverTicks == 0 {
		c.HangoverTicks = 50
	}
	if c.SilenceLevel == 0 {
		c.SilenceLevel = 90
	}
	if c.SwitchMarginDB == 0 {
		c.SwitchMarginDB = 6
	}
	return c
}

// Source is one input of the mix, owned by the caller. Before each Mix the
// caller writes the tick's decoded audio into PCM and sets Present, or
// clears Present when there is nothing to play (muted, not started, DTX).
type Source struct {
	PCM     []int16 // this tick's frame, FrameSamples long; filled by the caller
	Present bool    // PCM holds audio for this tick

	gain     float32
	own      []float32 // gain·PCM, kept for mix-minus
	level    uint8
	selected bool   // holds one of the TopN slots
	lastLoud uint64 // tick this source was last loud enough to mix
	mixed    bool   // summed into this tick's total
	index    int    // position in Mixer.sources
}

// SetGain sets the source's linear gain (1 is unity). Call it between ticks.
func (s *Source) SetGain(g float32) { s.gain = g }

// Gain returns the source's linear gain.
func (s *Source) Gain() float32 { return s.gain }

// Level is the source's RFC 6464 level in this tick, 0 (loud) to 127 (silent).
func (s *Source) Level() uint8 { return s.level }

// Mixed reports whether the source was summed into this tick's mix.
func (s *Source) Mixed() bool { return s.mixed }

// Selected reports whether the source holds a top-N slot (it may be in a pause).
func (s *Source) Selected() bool { return s.selected }

// Mixer sums sources and hands out mix-minus outputs. One goroutine owns it.
type Mixer struct {
	cfg      Config
	sources  []*Source
	total    []float32
	scratch  []float32
	tick     uint64
	nMixed   int
	selected int
}

// New makes a mixer.
func New(cfg Config) *Mixer {
	cfg = cfg.withDefaults()
	return &Mixer{
		cfg:     cfg,
		total:   make([]float32, cfg.FrameSamples),
		scratch: make([]float32, cfg.FrameSamples),
	}
}

// Config returns the mixer's settings, defaults filled in.
func (m *Mixer) Config() Config { return m.cfg }

// SetTopN changes how many sources are mixed at most, from the next tick.
func (m *Mixer) SetTopN(n int) {
	if n > 0 {
		m.cfg.TopN = n
	}
}

// AddSource adds an input with unity gain.
func (m *Mixer) AddSource() *Source {
	s := &Source{
		PCM:   make([]int16, m.cfg.FrameSamples),
		own:   make([]float32, m.cfg.FrameSamples),
		gain:  1,
		level: SilentLevel,
		index: len(m.sources),
	}
	m.sources = append(m.sources, s)
	return s
}

// RemoveSource takes s out of the mix.
func (m *Mixer) RemoveSource(s *Source) {
	i := s.index
	if i < 0 || i >= len(m.sources) || m.sources[i] != s {
		return
	}
	last := len(m.sources) - 1
	m.sources[i] = m.sources[last]
	m.sources[i].index = i
	m.sources[last] = nil
	m.sources = m.sources[:last]
	if s.selected {
		m.selected--
	}
	s.selected, s.mixed, s.index = false, false, -1
}

// Sources is how many inputs the mixer has.
func (m *Mixer) Sources() int { return len(m.sources) }

// MixedCount is how many sources this tick's mix holds.
func (m *Mixer) MixedCount() int { return m.nMixed }

// Mix measures every source, selects the loudest, and sums them. Call it
// once per tick, after filling the sources' PCM.
func (m *Mixer) Mix() {
	m.tick++
	for _, s := range m.sources {
		s.mixed = false
		s.level = SilentLevel
		if s.Present && s.gain > 0 {
			s.level = Level(s.PCM)
		}
		if s.level < m.cfg.SilenceLevel {
			s.lastLoud = m.tick
		}
	}
	m.select_()
	clear(m.total)
	m.nMixed = 0
	for _, s := range m.sources {
		if !s.selected || s.level >= m.cfg.SilenceLevel {
			continue
		}
		s.mixed = true
		m.nMixed++
		g := s.gain
		own, total := s.own[:len(s.PCM)], m.total[:len(s.PCM)]
		for i, v := range s.PCM {
			f := float32(v) * g
			own[i] = f
			total[i] += f
		}
	}
}

// select_ keeps the TopN slots: holders keep them through pauses up to the
// hangover; free slots go to the loudest newcomers; a full mix lets a
// newcomer in only when clearly louder than the quietest holder.
func (m *Mixer) select_() {
	hang := uint64(m.cfg.HangoverTicks)
	for _, s := range m.sources {
		if s.selected && m.tick-s.lastLoud > hang {
			s.selected = false
			m.selected--
		}
	}
	for m.selected > m.cfg.TopN { // TopN was lowered
		q := m.quietestSelected()
		q.selected = false
		m.selected--
	}
	for {
		c := m.loudestCandidate()
		if c == nil {
			return
		}
		if m.selected < m.cfg.TopN {
			c.selected = true
			m.selected++
			continue
		}
		// Only talking holders can be displaced: a holder in its hangover
		// reads silent (127), so any newcomer would look clearly louder and
		// the hangover would never keep a slot against competition.
		q := m.quietestTalking()
		if q == nil || int(q.level)-int(c.level) < int(m.cfg.SwitchMarginDB) {
			return
		}
		q.selected = false
		c.selected = true
	}
}

// loudestCandidate is the loudest unselected source that is not silent.
func (m *Mixer) loudestCandidate() *Source {
	var best *Source
	for _, s := range m.sources {
		if s.selected || s.level >= m.cfg.SilenceLevel {
			continue
		}
		if best == nil || s.level < best.level {
			best = s
		}
	}
	return best
}

// quietestSelected is the selected source with the highest level number.
func (m *Mixer) quietestSelected() *Source {
	var q *Source
	for _, s := range m.sources {
		if s.selected && (q == nil || s.level > q.level) {
			q = s
		}
	}
	return q
}

// quietestTalking is the selected, not silent source with the highest level
// number.
func (m *Mixer) quietestTalking() *Source {
	var q *Source
	for _, s := range m.sources {
		if s.selected && s.level < m.cfg.SilenceLevel && (q == nil || s.level > q.level) {
			q = s
		}
	}
	return q
}

// MixMinus writes what s hears into out: the mix without s, limited by lim.
// A source that is not in the mix hears the whole mix.
func (m *Mixer) MixMinus(s *Source, lim *Limiter, out []int16) {
	if s == nil || !s.mixed {
		m.Room(lim, out)
		return
	}
	buf := m.scratch[:len(out)]
	for i := range buf {
		buf[i] = m.total[i] - s.own[i]
	}
	lim.Process(buf, out)
}

// Room writes the whole mix into out, limited by lim: what listeners hear.
func (m *Mixer) Room(lim *Limiter, out []int16) {
	lim.Process(m.total[:len(out)], out)
}
