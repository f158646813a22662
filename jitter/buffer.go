package jitter

import (
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/codec"
)

// PushResult says what Push did with a packet.
type PushResult uint8

const (
	// Accepted: the packet is buffered.
	Accepted PushResult = iota
	// Reset: the packet starts a new stream (SSRC change or a timestamp
	// jump beyond Config.ResetJump); what was buffered is dropped, and the
	// packet is buffered.
	Reset
	// Duplicate: the packet was seen already; dropped.
	Duplicate
	// Late: the packet's time has been played (or is too old to place);
	// dropped.
	Late
	// Malformed: the payload is not a valid Opus packet; dropped.
	Malformed
	// Overflow: the buffer was full; the packet is buffered and the oldest
	// buffered packet was dropped to make room.
	Overflow
	// Outlier: the packet is far from the stream (its sequence number, or
	// a timestamp jump its sequence number does not explain) and is held
	// aside: it moves nothing and counts in no loss. The next packet
	// decides: if it follows the held one, the stream moved (a sender's
	// restart, or a long pause) and both play; if it follows the stream,
	// the held packet was a stray and is dropped (Stats.PacketsOutlier).
	Outlier
)

var resultNames = [...]string{"accepted", "reset", "duplicate", "late", "malformed", "overflow", "outlier"}

func (r PushResult) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "unknown"
}

const (
	clockRate   = codec.SampleRate
	frame       = codec.FrameSamples    // one tick, 20 ms
	bucketWidth = 20 * time.Millisecond // the wait before a start without a full target
	// histWidth is the relative-delay histogram's bucket: NetEQ's 20 ms
	// suits a buffer steered by whole packets, but a Player stretches by
	// pitch periods and can hold any level, and a 20 ms bucket rounds the
	// target up by 10 ms on average (20 ms at worst) of delay nobody needs.
	histWidth = 5 * time.Millisecond
	// forgetFactor weighs the arrival histogram's past per packet for a
	// Buffer used alone (NetEQ's 0.983: a spike needs three packets to
	// move the 95th percentile, a calm link halves old weight in about
	// 0.8 s), and the start delay's weight in both modes. Steered by whole
	// frames, a target that falls later leaves the level behind
	// (TestClockDrift).
	forgetFactor = 0.983
	// playerForget is a Player's: old weight halves in about 1.4 s. A
	// Player holds any level and bridges a late packet by stretching, so
	// what loses its frames is a target that fell in the calm between two
	// spikes; with a sample of the last few seconds rather than the last
	// second the percentile is steadier. Over seeds 1-16 of the jitter
	// scenarios, at the same delay, it dropped half to two thirds fewer
	// frames where packets may overtake, a sixth fewer at 80 ± 40 ms in
	// order, as many at 60 ± 30 ms in order (docs/weak-networks.md). Old
	// spikes are still forgotten within 10 s of calm: 3% of their weight
	// is left after 7 s.
	playerForget = 0.99
	// quantile of the relative delay the target covers. NetEQ takes
	// 0.95 and conceals the rest; a Player bridges a late packet by
	// stretching what it holds, but not every one (it needs two periods
	// held, and a packet more than a tick late), and 0.97 halved the
	// frames lost at 60 ± 30 ms for 5 ms more delay (docs/weak-networks.md).
	quantile = 0.97
	history  = 2 * time.Second // window of the relative-delay minimum
	// targetFall is how fast the target may fall, as a fraction of the
	// time between arrivals (4 ms per 20 ms packet: 200 ms a second); it
	// rises at once. The percentile falls in whole buckets (from the
	// 80 ms start to 20 ms in one step, 3.5 s in, once the start's weight
	// is forgotten), and a level 60 ms over a target that fell at once is
	// more than stretching removes in a tick or two; 4 ms a tick it
	// follows. Slower still (1 ms a tick) delays the clean link's speech
	// by a frame more for seconds.
	targetFall  = 0.2
	historySize = 256 // arrivals kept; 2 s of 10 ms packets
	// actionEvery is the least time between two drift corrections.
	actionEvery = 10 * frame
	// fadeAfter consecutive concealed frames (100 ms) the frame says Fading;
	// after silentAfter (200 ms) concealment is counted as silent; after
	// giveUpAfter (200 ms) with nothing buffered the buffer stops concealing
	// and waits for the stream to come back, as after DTX.
	fadeAfter   = 5
	silentAfter = 10
	giveUpAfter = 10
)

// slot is one buffered packet. Payloads live in preallocated arrays, so
// pushing does not allocate.
type slot struct {
	seq     int64 // extended sequence number
	ts      int64 // extended timestamp, 48 kHz
	samples int
	arrival time.Duration // since the buffer's epoch
	n       int
	payload [codec.MaxPacketBytes]byte
}

// arrivalRecord is one packet in the relative-delay history.
type arrivalRecord struct {
	at      time.Duration // arrival since epoch
	transit int64         // arrival minus media time, in samples
}

// Buffer is one incoming stream's jitter buffer. Push and Pop are safe to
// call from different goroutines.
type Buffer struct {
	mu  sync.Mutex
	cfg Config

	slots []slot
	free  []int32 // indices of unused slots
	order []int32 // indices of used slots, by timestamp

	// Stream identity and unwrapping.
	epoch      time.Time
	haveEpoch  bool
	streamInit bool
	ssrc       uint32
	highSeq    int64 // highest extended sequence number seen
	highTS     int64 // highest extended timestamp seen
	firstSeq   int64
	// PacketsReceived when the stream started, to count its losses.
	streamStartReceived uint64
	seen                [2]uint64 // bitmap of the 128 sequence numbers up to highSeq

	// Arrival statistics.
	arrivals    [historySize]arrivalRecord
	arrivalHead int
	arrivalN    int
	hist        []float64     // relative-delay histogram, histWidth buckets
	fastest     int64         // the fastest transit of the last history (relative delay 0), samples
	target      int           // target buffer level in samples
	targetAt    time.Duration // arrival time of the last target update
	haveTarget  bool          // targetAt is set
	packetLen   int           // duration of the last packet pushed, in samples
	lossRate    float64       // recent fraction of packets lost (noteLoss)
	// prior is the start delay's weight in the histogram, until arrivals
	// say otherwise: forgotten at NetEQ's pace in either mode, so a
	// Player's longer memory does not hold a clean link at the start
	// delay for longer.
	prior       float64
	lossy       bool  // the loss floor is on
	lastTransit int64 // samples
	haveTransit bool
	jitter      float64 // RFC 3550 interarrival jitter, seconds

	// Playout.
	playing     bool  // playTS is the next sample to play
	playValid   bool  // playTS bounds what is late, even while waiting
	playTS      int64 // extended timestamp of the next sample to play
	lastSeq     int64 // sequence number of the last packet played
	haveLastSeq bool
	lastWasDTX  bool
	concealRun  int   // consecutive concealed frames
	debt        int64 // samples concealed while empty, not yet skipped
	avgLevel    float64
	popAt       time.Duration // when Pop was last called, since epoch
	sinceAction int
	quiet       bool
	// Set by a Player, which time-stretches the decoded audio to steer
	// the level (stretch), holds held samples decoded but not played, and
	// says whether its last frame was digital silence (silent).
	stretching bool
	held       int
	silent     bool
	stretchDir int // +1 accelerating, -1 expanding, 0 neither (hysteresis)
	out        [codec.MaxPacketBytes]byte

	stats      Stats
	lostBefore int64 // packets lost in earlier streams (before resets)

	// A packet far from the stream, held aside until the next one says
	// whether the stream moved to it (see Outlier).
	aside heldAside
}

// heldAside is a packet far from the stream, kept until the next packet.
type heldAside struct {
	ok      bool
	hdr     rtp.Header
	arrival time.Time
	n       int
	payload [codec.MaxPacketBytes]byte
}

// Stats are the buffer's counters, named after W3C webrtc-stats
// (RTCInboundRtpStreamStats). Counters are cumulative over resets.
type Stats struct {
	PacketsReceived   uint64 // packets pushed, not counting malformed ones
	PacketsLost       int64  // expected minus received, as in RTCP
	PacketsDiscarded  uint64 // late, or dropped for room (overflow)
	PacketsDuplicated uint64 // received more than once; dropped
	// PacketsOutlier counts packets far from the stream that the next
	// packet did not follow (a stray copy, a spoofed or corrupted
	// sequence number or timestamp): dropped, and not in PacketsReceived
	// or PacketsLost.
	PacketsOutlier uint64
	Jitter         float64 // RFC 3550 interarrival jitter, seconds
	// JitterBufferDelay is the sum over emitted samples of the time each
	// spent buffered, in seconds; divide by JitterBufferEmittedCount.
	JitterBufferDelay float64
	// JitterBufferTargetDelay is the sum over emitted samples of the target
	// delay when they left, in seconds.
	JitterBufferTargetDelay  float64
	JitterBufferEmittedCount uint64 // samples decoded from received packets
	TotalSamplesReceived     uint64 // samples played since the stream started, concealment included
	ConcealedSamples         uint64 // samples of concealment (PLC)
	SilentConcealedSamples   uint64 // concealment after it has faded to silence
	ConcealmentEvents        uint64 // runs of concealment
	// LastConcealedTimestamp is the RTP timestamp of the latest frame
	// concealed: the missing audio's, or, when the buffer ran empty, the
	// next sample due, which then plays after the concealment. Sampled
	// after every tick with ConcealedSamples, it places each concealment
	// in the stream (a measurement's frame-by-frame scoring does).
	LastConcealedTimestamp uint32
	FecPacketsReceived     uint64 // packets whose in-band FEC recovered a loss
	// InsertedSamplesForDeceleration and RemovedSamplesForAcceleration
	// count the samples a Player's time-stretching inserted and removed
	// to steer the level, and the silence inserted or skipped in digital
	// silence and DTX pauses. A Buffer used without a Player steers by
	// whole frames, preferably quiet ones, and counts those.
	InsertedSamplesForDeceleration uint64
	RemovedSamplesForAcceleration  uint64
	// DroppedSamples counts the samples of whole packets a Player's buffer
	// dropped because its level was far above target (more than
	// FarAboveTarget): a last resort, apart from the stretching counted
	// in RemovedSamplesForAcceleration.
	DroppedSamples uint64
	Resets         uint64 // new streams: SSRC change or timestamp jump

	TargetDelay time.Duration // current target buffer level
	BufferLevel time.Duration // audio buffered now, from the next sample to play (a Player's decoded, unplayed audio included)
	// PlayoutLevel is what a Player steers toward TargetDelay, as of the
	// last packet it took: how far behind the fastest packet of the last
	// 2 s it takes packets out, plus the 20 ms being played. Packets
	// whose delay relative to that fastest packet is under PlayoutLevel −
	// 20 ms arrive in time. 0 while not playing, and for a Buffer used
	// alone (it steers BufferLevel).
	PlayoutLevel time.Duration
}

// New returns an empty buffer; it allocates everything it will use.
func New(cfg Config) *Buffer {
	cfg = cfg.withDefaults()
	b := &Buffer{
		cfg:   cfg,
		slots: make([]slot, cfg.Capacity),
		free:  make([]int32, cfg.Capacity),
		order: make([]int32, 0, cfg.Capacity),
		hist:  make([]float64, int(cfg.MaxDelay/histWidth)+2),
	}
	for i := range b.free {
		b.free[i] = int32(cfg.Capacity - 1 - i)
	}
	// Until arrivals say otherwise, all weight sits at the start delay.
	b.prior = 1
	b.target = durToSamples(cfg.StartDelay)
	return b
}

func (c Config) withDefaults() Config {
	if c.MinDelay <= 0 {
		c.MinDelay = 20 * time.Millisecond
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = 400 * time.Millisecond
	}
	c.MaxDelay = max(c.MaxDelay, c.MinDelay)
	if c.StartDelay <= 0 {
		c.StartDelay = 80 * time.Millisecond
	}
	c.StartDelay = min(max(c.StartDelay, c.MinDelay), c.MaxDelay)
	c.ExtraDelay = max(c.ExtraDelay, 0)
	if c.Capacity <= 0 {
		c.Capacity = 64
	}
	if c.ResetJump <= 0 {
		c.ResetJump = 3 * time.Second
	}
	if c.SuspectJump <= 0 {
		c.SuspectJump = time.Second
	}
	return c
}

func durToSamples(d time.Duration) int { return int(d * clockRate / time.Second) }

// frameDur is one frame, 20 ms.
const frameDur = frame * time.Second / clockRate

func samplesToDur(n int64) time.Duration { return time.Duration(n) * time.Second / clockRate }

// Push buffers one packet that arrived at the given time. It does not keep
// pkt or its payload.
func (b *Buffer) Push(pkt *rtp.Packet, arrival time.Time) PushResult {
	samples, err := codec.PacketSamples(pkt.Payload)
	if err != nil || len(pkt.Payload) > codec.MaxPacketBytes {
		return Malformed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.haveEpoch {
		b.epoch, b.haveEpoch = arrival, true
	}
	if b.streamInit && pkt.SSRC == b.ssrc {
		seq, ts := b.unwrapLocked(pkt)
		if b.farLocked(seq, ts) {
			h := &b.aside
			if !h.ok || !follows(pkt, &h.hdr) {
				if h.ok {
					b.stats.PacketsOutlier++ // the one held before: nothing followed it
				}
				h.ok, h.hdr, h.arrival = true, pkt.Header, arrival
				h.n = copy(h.payload[:], pkt.Payload)
				return Outlier
			}
		}
		if h := &b.aside; h.ok {
			h.ok = false
			if follows(pkt, &h.hdr) {
				// The stream moved to the held packet: take it first.
				held := rtp.Packet{Header: h.hdr, Payload: h.payload[:h.n]}
				heldSamples, _ := codec.PacketSamples(held.Payload) // valid: checked when it came
				r := b.pushLocked(&held, h.arrival, heldSamples)
				if r2 := b.pushLocked(pkt, arrival, samples); r2 != Accepted {
					return r2
				}
				return r
			}
			b.stats.PacketsOutlier++
		}
	}
	return b.pushLocked(pkt, arrival, samples)
}

// follows reports whether pkt is the packet after h: the next sequence
// number, and a timestamp at most 120 ms on.
func follows(pkt *rtp.Packet, h *rtp.Header) bool {
	d := int32(pkt.Timestamp - h.Timestamp)
	return pkt.SequenceNumber == h.SequenceNumber+1 && d >= 0 && d <= int32(codec.MaxFrameSamples*2)
}

// farLocked reports whether a packet of the stream is far from it: a
// sequence number more than maxSeqJump ahead or maxSeqBack behind, or a
// timestamp more than SuspectJump beyond what the sequence numbers
// explain (120 ms a packet), forward or back. A real move of the stream
// (a restart, a long DTX pause) is confirmed by the next packet.
func (b *Buffer) farLocked(seq, ts int64) bool {
	ds, dt := seq-b.highSeq, ts-b.highTS
	if ds > maxSeqJump || ds < -maxSeqBack {
		return true
	}
	slack := int64(durToSamples(b.cfg.SuspectJump))
	return dt > max(ds, 0)*int64(2*codec.MaxFrameSamples)+slack || dt < -(int64(2*codec.MaxFrameSamples)*max(-ds, 0)+slack)
}

// How far a sequence number may jump before the packet is held aside:
// 100 ahead (2 s of 20 ms packets lost in a row), 1000 behind (older than
// the 128 the buffer remembers is late; far older is another stream).
const (
	maxSeqJump = 100
	maxSeqBack = 1000
)

// pushLocked buffers a packet Push let through: its payload valid Opus
// of the given duration.
func (b *Buffer) pushLocked(pkt *rtp.Packet, arrival time.Time, samples int) PushResult {
	at := arrival.Sub(b.epoch)
	result := Accepted
	if b.streamInit && pkt.SSRC != b.ssrc {
		b.newStreamLocked()
		result = Reset
	}
	if !b.streamInit {
		b.initStreamLocked(pkt)
	}
	seq, ts := b.unwrapLocked(pkt)
	if d := ts - b.highTS; d > int64(durToSamples(b.cfg.ResetJump)) || -d > int64(durToSamples(b.cfg.ResetJump)) {
		b.newStreamLocked()
		b.initStreamLocked(pkt)
		seq, ts = b.unwrapLocked(pkt)
		result = Reset
	}
	// A packet older than the stream's first (the first ones arrived out of
	// order) widens what was expected; otherwise PacketsLost goes negative.
	b.firstSeq = min(b.firstSeq, seq)

	if seq <= b.highSeq-128 {
		b.stats.PacketsReceived++
		b.stats.PacketsDiscarded++
		return Late
	}
	if b.seenLocked(seq) {
		b.stats.PacketsDuplicated++
		return Duplicate
	}
	b.markSeenLocked(seq)
	b.stats.PacketsReceived++
	if ts > b.highTS {
		b.highTS = ts
	}
	b.observeArrivalLocked(at, ts)

	if b.playValid && ts < b.playTS {
		b.stats.PacketsDiscarded++
		return Late
	}
	if len(b.order) == cap(b.order) {
		b.evictOldestLocked()
		result = Overflow
	}
	b.packetLen = samples
	b.insertLocked(seq, ts, samples, at, pkt.Payload)
	return result
}

// initStreamLocked takes pkt as the first packet of a stream.
func (b *Buffer) initStreamLocked(pkt *rtp.Packet) {
	b.streamInit = true
	b.ssrc = pkt.SSRC
	b.highSeq = int64(pkt.SequenceNumber)
	b.firstSeq = b.highSeq
	b.highTS = int64(pkt.Timestamp)
	b.seen = [2]uint64{}
	b.streamStartReceived = b.stats.PacketsReceived
}

// unwrapLocked extends pkt's 16-bit sequence number and 32-bit timestamp
// relative to the highest seen, so wrap-around is invisible above.
func (b *Buffer) unwrapLocked(pkt *rtp.Packet) (seq, ts int64) {
	seq = b.highSeq + int64(int16(pkt.SequenceNumber-uint16(b.highSeq)))
	ts = b.highTS + int64(int32(pkt.Timestamp-uint32(b.highTS)))
	return seq, ts
}

func (b *Buffer) seenLocked(seq int64) bool {
	if seq > b.highSeq {
		return false
	}
	d := b.highSeq - seq
	return b.seen[d/64]&(1<<(d%64)) != 0
}

// markSeenLocked records seq, sliding the 128-packet window when seq is the
// new highest.
func (b *Buffer) markSeenLocked(seq int64) {
	if seq > b.highSeq {
		shift := seq - b.highSeq
		switch {
		case shift >= 128:
			b.seen = [2]uint64{}
		case shift >= 64:
			b.seen[1] = b.seen[0] << (shift - 64)
			b.seen[0] = 0
		default:
			b.seen[1] = b.seen[1]<<shift | b.seen[0]>>(64-shift)
			b.seen[0] <<= shift
		}
		b.highSeq = seq
	}
	d := b.highSeq - seq
	b.seen[d/64] |= 1 << (d % 64)
}

// newStreamLocked forgets the current stream: buffered packets, playout
// position and unwrapping state. Arrival statistics and counters stay; the
// network has not changed.
func (b *Buffer) newStreamLocked() {
	if b.streamInit {
		b.lostBefore = b.lostLocked()
		b.stats.Resets++
	}
	b.clearPlayoutLocked()
	b.streamInit = false
	b.haveTransit = false
	b.arrivalN = 0
}

func (b *Buffer) clearPlayoutLocked() {
	for _, i := range b.order {
		b.free = append(b.free, i)
	}
	b.order = b.order[:0]
	b.playing, b.playValid = false, false
	b.haveLastSeq, b.lastWasDTX = false, false
	b.concealRun, b.debt = 0, 0
	b.avgLevel, b.sinceAction = 0, 0
}

func (b *Buffer) lostLocked() int64 {
	if !b.streamInit {
		return b.lostBefore
	}
	expected := b.highSeq - b.firstSeq + 1
	return b.lostBefore + expected - int64(b.receivedInStream())
}

// receivedInStream counts the unique packets of the current stream.
func (b *Buffer) receivedInStream() uint64 { return b.stats.PacketsReceived - b.streamStartReceived }

// observeArrivalLocked updates the interarrival jitter and the
// relative-delay histogram that sets the target (NetEQ's method): a
// packet's delay relative to the fastest packet of the last two seconds,
// in histWidth buckets, old weight forgotten per packet (forgetFactor, or
// playerForget for a Player).
func (b *Buffer) observeArrivalLocked(at time.Duration, ts int64) {
	// In samples: an extended timestamp in nanoseconds could overflow.
	transit := int64(durToSamples(at)) - ts
	if b.haveTransit {
		d := float64(transit-b.lastTransit) / clockRate
		if d < 0 {
			d = -d
		}
		b.jitter += (d - b.jitter) / 16
	}
	b.lastTransit, b.haveTransit = transit, true
	b.stats.Jitter = b.jitter

	b.arrivals[b.arrivalHead] = arrivalRecord{at: at, transit: transit}
	b.arrivalHead = (b.arrivalHead + 1) % historySize
	b.arrivalN = min(b.arrivalN+1, historySize)
	fastest := transit
	for i := 1; i <= b.arrivalN; i++ {
		r := &b.arrivals[(b.arrivalHead-i+historySize)%historySize]
		if at-r.at > history {
			break
		}
		fastest = min(fastest, r.transit)
	}
	relative := samplesToDur(transit - fastest)
	b.fastest = fastest

	forget := forgetFactor
	if b.stretching {
		forget = playerForget
	}
	b.prior *= forgetFactor
	total := b.prior
	for i := range b.hist {
		b.hist[i] *= forget
		total += b.hist[i]
	}
	b.hist[b.bucketOf(relative)] += 1 - forget
	total += 1 - forget

	// The target level is the quantile of relative delay plus the frame
	// being played, within the configured bounds: a packet whose
	// relative delay is r arrives in time when the buffer plays r behind
	// the fastest packets (see playoutLevelLocked).
	acc, bq, start := 0.0, 0, b.bucketOf(b.cfg.StartDelay-frameDur)
	for i, w := range b.hist {
		acc += w
		if i == start {
			acc += b.prior
		}
		if acc >= quantile*total {
			bq = i
			break
		}
	}
	t := time.Duration(bq)*histWidth + frameDur
	if !b.stretching {
		// Steered by whole frames, in NetEQ's 20 ms buckets: the margin
		// the rounding gives is what whole-frame corrections need.
		t = (t + frameDur - 1) / frameDur * frameDur
	}
	if t > b.cfg.MinDelay {
		t += min(b.cfg.ExtraDelay, t-b.cfg.MinDelay)
	}
	t = min(max(t, b.cfg.MinDelay), b.cfg.MaxDelay)
	want := durToSamples(t)
	if b.haveTarget && want < b.target {
		fall := 0
		if at > b.targetAt {
			fall = durToSamples(time.Duration(float64(at-b.targetAt) * targetFall))
		}
		want = max(want, b.target-fall)
	}
	b.target, b.targetAt, b.haveTarget = want, at, true
}

// bucketOf rounds a relative delay up to its histWidth bucket.
func (b *Buffer) bucketOf(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	i := int((d + histWidth - 1) / histWidth)
	return min(i, len(b.hist)-1)
}

// insertLocked copies the packet into a free slot and keeps order sorted by
// timestamp; packets mostly arrive in order, so the search runs from the end.
func (b *Buffer) insertLocked(seq, ts int64, samples int, at time.Duration, payload []byte) {
	i := b.free[len(b.free)-1]
	b.free = b.free[:len(b.free)-1]
	s := &b.slots[i]
	s.seq, s.ts, s.samples, s.arrival = seq, ts, samples, at
	s.n = copy(s.payload[:], payload)

	pos := len(b.order)
	for pos > 0 && b.slots[b.order[pos-1]].ts > ts {
		pos--
	}
	b.order = b.order[:len(b.order)+1]
	copy(b.order[pos+1:], b.order[pos:])
	b.order[pos] = i
}

// evictOldestLocked drops the oldest packet to make room; playout skips
// past it rather than concealing a hole.
func (b *Buffer) evictOldestLocked() {
	s := &b.slots[b.order[0]]
	if b.playValid {
		b.playTS = max(b.playTS, s.ts+int64(s.samples))
	}
	b.removeHeadLocked()
	b.stats.PacketsDiscarded++
}

func (b *Buffer) removeHeadLocked() {
	b.free = append(b.free, b.order[0])
	copy(b.order, b.order[1:])
	b.order = b.order[:len(b.order)-1]
}

// MarkQuiet tells the buffer whether the audio it last gave out was quiet;
// drift corrections prefer quiet moments, where they are not heard.
func (b *Buffer) MarkQuiet(quiet bool) {
	b.mu.Lock()
	b.quiet = quiet
	b.mu.Unlock()
}

// TargetDelay is the current target buffer level.
func (b *Buffer) TargetDelay() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return samplesToDur(int64(b.target))
}

// effectiveTarget is the target level. A buffer steered by its occupancy
// holds at least one packet: a buffer of 60 ms packets holds 60 ms
// whatever the network does. A Player's, steered by its playout level,
// needs no such floor: a long packet's transit already counts its length.
func (b *Buffer) effectiveTarget() int {
	t := b.target
	if !b.stretching {
		t = max(t, b.packetLen)
	}
	if b.lossy {
		// On a lossy link keep the next packet in hand when one is missing:
		// its in-band FEC rebuilds the lost frame, where an empty buffer
		// could only conceal it.
		t = max(t, 2*frame)
	}
	return t
}

// The loss floor engages when the recent loss rate passes lossyOn (a single
// loss does not reach it, two within a second or so do) and lets go only
// below lossyOff, about 100 packets without a loss: under steady random
// loss it holds, instead of toggling the delay with every lucky run.
const (
	lossyOn  = 0.03
	lossyOff = 0.005
)

// noteLoss folds lost packets and one received into the recent loss rate,
// an average over about the last 50 packets.
func (b *Buffer) noteLoss(lost int64) {
	for range min(lost, 50) {
		b.lossRate = b.lossRate*0.98 + 0.02
	}
	b.lossRate *= 0.98
	switch {
	case b.lossRate > lossyOn:
		b.lossy = true
	case b.lossRate < lossyOff:
		b.lossy = false
	}
}

// Reset drops everything buffered and waits for the stream to start again;
// counters and arrival statistics stay.
func (b *Buffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.newStreamLocked()
}

// Stats returns a snapshot of the counters.
func (b *Buffer) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.stats
	s.PacketsLost = b.lostLocked()
	s.TargetDelay = samplesToDur(int64(b.target))
	s.BufferLevel = samplesToDur(int64(b.levelLocked()))
	if b.playing && b.stretching {
		s.PlayoutLevel = samplesToDur(int64(b.avgLevel))
	}
	return s
}

// levelLocked is the audio buffered from the next sample to play, in
// samples.
func (b *Buffer) levelLocked() int {
	if len(b.order) == 0 {
		return b.heldLocked()
	}
	last := &b.slots[b.order[len(b.order)-1]]
	from := b.slots[b.order[0]].ts
	if b.playing {
		from = b.playTS
	}
	return int(max(0, last.ts+int64(last.samples)-from)) + b.heldLocked()
}

// playoutLevelLocked is what a Player's buffer steers, at a Pop: how far
// behind the fastest packet of the last history the next sample to decode
// will play (after the audio the Player holds), plus the frame being
// played, in samples (the scale of the target and the occupancy). A
// packet with relative delay r arrives before it plays when r is at most
// this level less a frame; it is due up to a frame earlier (see maxReserve).
// Unlike the occupancy, which follows each packet's own delay (and so
// sits near the mean delay, not the fastest), it moves only when playout
// stretches, conceals or skips, or the fastest packet of the history
// changes.
func (b *Buffer) playoutLevelLocked() int {
	// Concealment played while nothing was buffered (debt) has moved
	// playout on as much, though playTS waits for the packet.
	return int(int64(durToSamples(b.popAt))-b.fastest-b.playTS-b.debt) + b.held + frame
}

// heldLocked is the audio a Player decoded and holds unplayed, counted in
// the level while playing.
func (b *Buffer) heldLocked() int {
	if !b.playing {
		return 0
	}
	return b.held
}
