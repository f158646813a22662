package impair

import (
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"
)

// Dist is the shape of the jitter added to a packet's delay.
type Dist uint8

const (
	// Normal jitter is a zero-mean normal sample with σ = Jitter, so the
	// mean delay stays Delay (a little more where the clamp at zero bites,
	// or where Reorder is false and packets wait for earlier ones).
	Normal Dist = iota
	// LogNormal jitter is heavy-tailed and one-sided, like queueing delay:
	// exp(μ + s·N) with shape s = 1, scaled so its standard deviation is
	// Jitter. Delay is then the floor; the mean extra delay is 0.76·Jitter,
	// the median 0.46·Jitter, and one packet in a thousand waits over
	// 10·Jitter. Unlike a Pareto tail every moment is finite, so the
	// standard deviation is Jitter in a sample too, not only in theory.
	LogNormal
)

// String names the distribution.
func (d Dist) String() string {
	switch d {
	case Normal:
		return "normal"
	case LogNormal:
		return "lognormal"
	}
	return "Dist(" + strconv.Itoa(int(d)) + ")"
}

// logNormalShape is LogNormal's s. Its scale e^μ is Jitter/logNormalStd,
// where logNormalStd = √(e^{s²}−1)·e^{s²/2} is the standard deviation at μ = 0.
const logNormalShape = 1.0

var logNormalStd = math.Sqrt(math.Expm1(logNormalShape*logNormalShape)) * math.Exp(logNormalShape*logNormalShape/2)

// duplicateGap is how much later a duplicate arrives than its original:
// a retransmitting link layer or a doubled route, a little behind.
const duplicateGap = time.Millisecond

// GilbertElliott is a two-state Markov model of bursty loss. Each packet
// is lost with the loss probability of the current state, then the state
// moves on; a link starts in the good state. With LossGood = 0 and
// LossBad = 1 (the Gilbert model) every bad run is one loss burst.
type GilbertElliott struct {
	PGoodToBad float64 // per packet: probability the good state turns bad
	PBadToGood float64 // per packet: probability the bad state turns good
	LossGood   float64 // loss probability in the good state
	LossBad    float64 // loss probability in the bad state
}

// BadFraction is the stationary share of packets sent in the bad state,
// PGoodToBad / (PGoodToBad + PBadToGood).
func (g GilbertElliott) BadFraction() float64 {
	if g.PGoodToBad+g.PBadToGood == 0 {
		return 0
	}
	return g.PGoodToBad / (g.PGoodToBad + g.PBadToGood)
}

// MeanLoss is the long-run loss probability of the model alone.
func (g GilbertElliott) MeanLoss() float64 {
	b := g.BadFraction()
	return (1-b)*g.LossGood + b*g.LossBad
}

// MeanBadRun is the mean number of consecutive packets sent in the bad
// state, 1/PBadToGood: the mean loss burst length of the Gilbert model.
func (g GilbertElliott) MeanBadRun() float64 {
	if g.PBadToGood == 0 {
		return math.Inf(1)
	}
	return 1 / g.PBadToGood
}

// Config describes one direction of an impaired path. The zero value is a
// perfect wire: no loss, no delay, in order.
//
// A packet meets the impairments in this order: the bandwidth cap and its
// queue, loss (random, then bursty: either loses it), delay and jitter,
// the explicit hold-back, and duplication.
type Config struct {
	Loss  float64         // independent loss probability per packet
	Burst *GilbertElliott // bursty loss on top of Loss; nil for none

	Delay      time.Duration // base one-way delay
	Jitter     time.Duration // jitter scale: σ for Normal, standard deviation for LogNormal
	JitterDist Dist          // shape of the jitter
	// Reorder lets jittered packets overtake each other. When false the
	// link is FIFO: a packet arrives no earlier than the one sent before
	// it (arrival = max(own, previous)), which models jitter without
	// reordering, the head-of-line blocking of an in-order link layer.
	Reorder bool

	// ReorderProb is the probability a packet is held back by a further
	// ReorderDelay: explicit reordering, whatever Reorder says. A held
	// packet does not hold up the ones after it.
	ReorderProb  float64
	ReorderDelay time.Duration

	// Duplicate is the probability a packet arrives twice, the copy 1 ms
	// after the original.
	Duplicate float64

	// RateBps caps the bandwidth in bits per second (0 for none): a packet
	// takes len·8/RateBps to leave, after those queued before it.
	// QueueBytes bounds what waits, the packet being sent included; a
	// packet that would overflow it is dropped (drop-tail). 0 means an
	// unbounded queue.
	RateBps    int
	QueueBytes int

	// Seed seeds the random draws; each impairment has its own PCG stream,
	// so turning one on or off leaves the others' draws alone.
	Seed uint64

	// Start and Stop bound the impairment to packets sent in [Start, Stop)
	// on the link's clock (see Link.SetEpoch); 0 Stop means forever.
	// Outside the window the link is a perfect wire, still FIFO unless
	// Reorder is set.
	Start, Stop time.Duration
}

// LinkStats counts what a Link did. Every snapshot adds up, whatever is
// still on the way: Sent + Duplicated = Delivered + Lost + QueueDrops +
// InFlight, each packet counted in exactly one of the right-hand terms.
type LinkStats struct {
	Sent       uint64 // Send calls
	Delivered  uint64 // packets handed to Deliver's fn, duplicates included
	Lost       uint64 // lost to Loss or Burst
	Duplicated uint64 // extra copies made
	// InFlight is how many packets, duplicates included, are scheduled
	// and not yet delivered: Pending at the time of the snapshot.
	InFlight uint64
	// Reordered counts deliveries of a packet sent before one already
	// delivered (duplicates aside).
	Reordered  uint64
	QueueDrops uint64 // dropped by a full queue under RateBps

	// MaxDelay and MeanDelay are over the deliveries, of the modelled
	// send-to-arrival time: a Relay's timer wakes a little later still.
	MaxDelay  time.Duration
	MeanDelay time.Duration
}

// merge adds o's counts to s's, for a relay's totals.
func (s LinkStats) merge(o LinkStats) LinkStats {
	n := s.Delivered + o.Delivered
	var mean time.Duration
	if n > 0 {
		mean = time.Duration((float64(s.MeanDelay)*float64(s.Delivered) + float64(o.MeanDelay)*float64(o.Delivered)) / float64(n))
	}
	return LinkStats{
		Sent: s.Sent + o.Sent, Delivered: n, Lost: s.Lost + o.Lost,
		Duplicated: s.Duplicated + o.Duplicated, InFlight: s.InFlight + o.InFlight,
		Reordered:  s.Reordered + o.Reordered,
		QueueDrops: s.QueueDrops + o.QueueDrops,
		MaxDelay:   max(s.MaxDelay, o.MaxDelay), MeanDelay: mean,
	}
}

// item is one packet in flight. Times are offsets from Link.base, so the
// heap compares integers.
type item struct {
	at, sent time.Duration // arrival and send time
	order    uint64        // scheduling order: ties arrive in it
	id       uint64        // the Send that made it, from 1
	dup      bool          // a duplicate copy
	buf      []byte
}

// Link is one direction of an impaired path: Send puts packets in,
// Deliver takes out those that have arrived. Its methods are safe for
// concurrent use, but overlapping Deliver calls do not keep arrival order
// between them.
type Link struct {
	cfg Config

	mu       sync.Mutex
	started  bool
	base     time.Time     // the first Send's time: item times count from it
	epoch    time.Duration // the window's zero, from base
	epochSet bool
	q        []item // min-heap by (at, order)
	order    uint64
	last     time.Duration // latest FIFO arrival scheduled
	busy     time.Duration // when the rate-capped sender is next idle
	bad      bool          // Gilbert–Elliott state
	free     [][]byte
	lastID   uint64 // highest id delivered, for Reordered
	sumDelay time.Duration
	stats    LinkStats

	loss, burst, jitter, hold, dup *rand.Rand
}

// maxFree bounds the packet buffers a Link keeps for reuse.
const maxFree = 1024

// New returns a Link impaired as cfg says.
func New(cfg Config) *Link { return newLink(cfg, 0) }

// newLink seeds the link's streams from cfg.Seed and stream, so a relay's
// clients, all with one Config, get independent paths.
func newLink(cfg Config, stream uint64) *Link {
	src := func(k uint64) *rand.Rand {
		s := splitmix(cfg.Seed ^ splitmix(stream<<8|k))
		return rand.New(rand.NewPCG(s, splitmix(s)))
	}
	return &Link{
		cfg:  cfg,
		loss: src(1), burst: src(2), jitter: src(3), hold: src(4), dup: src(5),
	}
}

// splitmix is SplitMix64's output function: it spreads nearby seeds apart.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// SetEpoch sets the time Config.Start and Stop count from; by default it
// is the first Send's time. It may be called at any time.
func (l *Link) SetEpoch(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.start(t)
	l.epoch, l.epochSet = t.Sub(l.base), true
}

// start fixes base at the first time the link sees.
func (l *Link) start(t time.Time) {
	if !l.started {
		l.started, l.base = true, t
	}
}

// Send puts a copy of pkt on the link at time at. Send times should not go
// backwards: the bandwidth cap and FIFO order assume they do not.
func (l *Link) Send(pkt []byte, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.start(at)
	if !l.epochSet {
		l.epoch, l.epochSet = at.Sub(l.base), true
	}
	l.stats.Sent++
	id := l.stats.Sent
	c := &l.cfg
	t := at.Sub(l.base)
	if w := t - l.epoch; w < c.Start || (c.Stop > 0 && w >= c.Stop) {
		if !c.Reorder {
			t = max(t, l.last)
			l.last = t
		}
		l.push(pkt, t, t-at.Sub(l.base), id, false)
		return
	}
	sent := t

	if c.RateBps > 0 {
		start := max(t, l.busy)
		end := start + txTime(len(pkt), c.RateBps)
		if c.QueueBytes > 0 && end-t > txTime(c.QueueBytes, c.RateBps) {
			l.stats.QueueDrops++
			return
		}
		l.busy, t = end, end
	}

	lost := c.Loss > 0 && l.loss.Float64() < c.Loss
	if g := c.Burst; g != nil {
		p := g.LossGood
		if l.bad {
			p = g.LossBad
		}
		lost = l.burst.Float64() < p || lost
		if l.bad {
			l.bad = l.burst.Float64() >= g.PBadToGood
		} else {
			l.bad = l.burst.Float64() < g.PGoodToBad
		}
	}
	if lost {
		l.stats.Lost++
		return
	}

	d := c.Delay
	if c.Jitter > 0 {
		switch c.JitterDist {
		case LogNormal:
			d += time.Duration(float64(c.Jitter) / logNormalStd * math.Exp(logNormalShape*l.jitter.NormFloat64()))
		default:
			d += time.Duration(float64(c.Jitter) * l.jitter.NormFloat64())
		}
	}
	t += max(d, 0)

	held := c.ReorderProb > 0 && l.hold.Float64() < c.ReorderProb
	if held {
		t += c.ReorderDelay
	} else if !c.Reorder {
		t = max(t, l.last)
		l.last = t
	}
	l.push(pkt, t, t-sent, id, false)

	if c.Duplicate > 0 && l.dup.Float64() < c.Duplicate {
		l.stats.Duplicated++
		t += duplicateGap
		if !held && !c.Reorder {
			l.last = t
		}
		l.push(pkt, t, t-sent, id, true)
	}
}

// txTime is how long n bytes take at rate bits per second.
func txTime(n, rate int) time.Duration {
	return time.Duration(int64(n) * 8 * int64(time.Second) / int64(rate))
}

// push schedules a copy of pkt to arrive at at, delay after it was sent.
func (l *Link) push(pkt []byte, at, delay time.Duration, id uint64, dup bool) {
	var buf []byte
	if n := len(l.free); n > 0 {
		buf, l.free = l.free[n-1], l.free[:n-1]
	}
	if cap(buf) < len(pkt) {
		buf = make([]byte, len(pkt), max(len(pkt), 1500))
	}
	buf = buf[:len(pkt)]
	copy(buf, pkt)
	l.order++
	l.q = append(l.q, item{at: at, sent: at - delay, order: l.order, id: id, dup: dup, buf: buf})
	l.up(len(l.q) - 1)
}

// Next reports when the earliest packet in flight arrives.
func (l *Link) Next() (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.q) == 0 {
		return time.Time{}, false
	}
	return l.base.Add(l.q[0].at), true
}

// Pending is how many packets are in flight, duplicates included.
func (l *Link) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.q)
}

// Deliver calls fn for every packet arriving at or before until, in order
// of arrival and, for equal times, of scheduling. pkt is valid only during
// fn; at is its arrival time. fn may call Send, on this link or another.
func (l *Link) Deliver(until time.Time, fn func(pkt []byte, at time.Time)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.started {
		return
	}
	base, lim := l.base, until.Sub(l.base)
	for len(l.q) > 0 && l.q[0].at <= lim {
		it := l.pop()
		d := it.at - it.sent
		l.stats.Delivered++
		l.stats.MaxDelay = max(l.stats.MaxDelay, d)
		l.sumDelay += d
		if !it.dup {
			if it.id < l.lastID {
				l.stats.Reordered++
			}
			l.lastID = max(l.lastID, it.id)
		}
		l.mu.Unlock()
		fn(it.buf, base.Add(it.at))
		l.mu.Lock()
		if len(l.free) < maxFree {
			l.free = append(l.free, it.buf)
		}
	}
}

// Stats returns the link's counts so far.
func (l *Link) Stats() LinkStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.InFlight = uint64(len(l.q))
	if s.Delivered > 0 {
		s.MeanDelay = l.sumDelay / time.Duration(s.Delivered)
	}
	return s
}

// less orders the heap: by arrival, then by scheduling.
func (l *Link) less(i, j int) bool {
	a, b := &l.q[i], &l.q[j]
	return a.at < b.at || a.at == b.at && a.order < b.order
}

func (l *Link) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !l.less(i, p) {
			return
		}
		l.q[i], l.q[p] = l.q[p], l.q[i]
		i = p
	}
}

func (l *Link) pop() item {
	it := l.q[0]
	n := len(l.q) - 1
	l.q[0] = l.q[n]
	l.q[n] = item{}
	l.q = l.q[:n]
	for i := 0; ; {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && l.less(c+1, c) {
			c++
		}
		if !l.less(c, i) {
			break
		}
		l.q[i], l.q[c] = l.q[c], l.q[i]
		i = c
	}
	return it
}
