package engine

import (
	"sync/atomic"
	"time"

	"github.com/handsup-audio/handsup/jitter"
)

// DropReason says why an incoming packet was not played.
type DropReason int

// Reasons for dropping an incoming packet.
const (
	DropMalformed   DropReason = iota // not a parsable RTP packet
	DropPayloadType                   // payload type other than the participant's
	DropNotSpeaker                    // sent by a listener
	DropLeft                          // sent after the participant left
	DropDuplicate                     // a copy of a packet already held or played
	DropLate                          // arrived after its play-out time
	DropBadOpus                       // RTP was fine, the Opus payload was not
	DropOverflow                      // the jitter buffer was full
	// DropOutlier: far from the stream (sequence number or timestamp) and
	// held aside; counted when it arrives, whether or not the next
	// packet then confirms the stream moved to it.
	DropOutlier
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	"malformed", "payload_type", "not_speaker", "left",
	"duplicate", "late", "bad_opus", "overflow", "outlier",
}

func (d DropReason) String() string {
	if d < 0 || d >= numDropReasons {
		return "unknown"
	}
	return dropReasonNames[d]
}

// DropReasons lists every reason, for exporters that pre-create labels.
func DropReasons() []DropReason {
	out := make([]DropReason, numDropReasons)
	for i := range out {
		out[i] = DropReason(i)
	}
	return out
}

// counters are the atomic totals a room keeps and the engine sums at read
// time, so the hot path touches only its own room's cache lines.
type counters struct {
	packetsIn, bytesIn   atomic.Uint64
	packetsOut, bytesOut atomic.Uint64
	dropped              [numDropReasons]atomic.Uint64
	decodes              atomic.Uint64 // Decode calls on received packets
	fecRecovered         atomic.Uint64 // frames recovered from in-band FEC
	concealed            atomic.Uint64 // frames of packet-loss concealment
	decodeErrors         atomic.Uint64
	encodes              atomic.Uint64
	encodeErrors         atomic.Uint64
	sinkErrors           atomic.Uint64
	ticks                atomic.Uint64
	redRecovered         atomic.Uint64 // packets rebuilt from a speaker's RED
	tierSwitches         atomic.Uint64
	retransmitted        atomic.Uint64 // packets sent again for a NACK
	nacksRefused         atomic.Uint64 // NACKed packets not sent: too old, RTT or rate
	badAudioLevels       atomic.Uint64 // RFC 6464 extensions that were not one byte
	joined               [numRoles]atomic.Uint64
	left                 [numLeaveReasons]atomic.Uint64
	loss, rtt, jitter    histogram // what participants' receiver reports say
	delay                histogram // speakers' jitter-buffer delay, once a second
	// Nanoseconds of the room's ticks: building (encodes apart), encoding,
	// sending (Counters.BuildTime).
	buildTime, encodeTime, sendTime atomic.Int64
	splitSends                      atomic.Uint64 // ticks whose Send ran in parts
}

// init gives the histograms their buckets.
func (c *counters) init() {
	c.loss, c.rtt = newHistogram(LossBuckets), newHistogram(RTTBuckets)
	c.jitter, c.delay = newHistogram(JitterBuckets), newHistogram(DelayBuckets)
}

// LeaveReasons lists the reasons Counters.Left counts by, in its order:
// handsup's own, then "other" for any reason a caller of Room.Kick gave.
func LeaveReasons() []string {
	return []string{ReasonLeft, ReasonKicked, ReasonTimeout, ReasonRoomClosed, "other"}
}

const numLeaveReasons = 5

// leaveIndex is reason's index in LeaveReasons.
func leaveIndex(reason string) int {
	for i, r := range LeaveReasons()[:numLeaveReasons-1] {
		if r == reason {
			return i
		}
	}
	return numLeaveReasons - 1
}

// Counters is a snapshot of cumulative totals, for a room or the engine.
type Counters struct {
	PacketsIn, BytesIn   uint64
	PacketsOut, BytesOut uint64
	Dropped              [numDropReasons]uint64 // indexed by DropReason
	Decodes              uint64                 // packets decoded
	FECRecovered         uint64                 // frames recovered from in-band FEC
	Concealed            uint64                 // frames concealed (PLC)
	DecodeErrors         uint64                 // corrupt payloads (concealed instead)
	Encodes              uint64
	EncodeErrors         uint64
	SinkErrors           uint64
	RoomTicks            uint64 // ticks summed over rooms
	REDRecovered         uint64 // speakers' packets rebuilt from RED redundancy
	TierSwitches         uint64 // participants moved between tiers
	Retransmitted        uint64 // packets sent again for NACKs
	NACKsRefused         uint64 // NACKed packets not sent: too old, RTT too long, or over the rate
	// BadAudioLevels counts RFC 6464 audio-level header extensions, under
	// a participant's AudioLevelExtID, that were not one byte: the level
	// is not read, the packet still plays.
	BadAudioLevels uint64
	// Joined counts joins by the role joined with, indexed by Role; Left
	// counts leaves by reason, indexed as LeaveReasons.
	Joined [numRoles]uint64
	Left   [numLeaveReasons]uint64
	// Loss, RTT and Jitter are the distributions of what participants'
	// receiver reports said of the stream sent to them
	// (Participant.ReportReception): fraction lost, round trip (when
	// known) and interarrival jitter, one observation per report.
	Loss, RTT, Jitter Histogram
	// BufferDelay is the distribution of speakers' jitter-buffer delay:
	// once a second per speaker whose stream played, the mean time the
	// last second's samples waited in its buffer (W3C jitterBufferDelay
	// over jitterBufferEmittedCount).
	BufferDelay Histogram
	// BuildTime, EncodeTime and SendTime split the wall time of the
	// room's ticks, summed: building the tick under the room's lock (its
	// wait for the lock, the decodes, the mix and every participant's
	// packet queued), the Opus encodes within it, and the sends after it
	// (RoomConfig.Send and AfterTick). Building grows with the
	// participants, encoding with the voices heard (and falls while the
	// engine sheds load), sending with the listeners and the kernel's cost
	// per datagram.
	BuildTime, EncodeTime, SendTime time.Duration
	// SplitSends counts room ticks whose Send ran in parts on several
	// workers: a room of more than RoomConfig.SendSplit sinks, or one
	// whose sends in one part take longer than SplitSendAfter. Parts
	// cost more CPU a datagram than one worker (they contend for the
	// socket), and keep a large room's ticks on time.
	SplitSends uint64
}

// DroppedTotal sums the drops over every reason.
func (c Counters) DroppedTotal() uint64 {
	var n uint64
	for _, v := range c.Dropped {
		n += v
	}
	return n
}

func (c *counters) snapshot() Counters {
	s := Counters{
		PacketsIn: c.packetsIn.Load(), BytesIn: c.bytesIn.Load(),
		PacketsOut: c.packetsOut.Load(), BytesOut: c.bytesOut.Load(),
		Decodes: c.decodes.Load(), FECRecovered: c.fecRecovered.Load(),
		Concealed: c.concealed.Load(), DecodeErrors: c.decodeErrors.Load(),
		Encodes: c.encodes.Load(), EncodeErrors: c.encodeErrors.Load(),
		SinkErrors: c.sinkErrors.Load(), RoomTicks: c.ticks.Load(),
		REDRecovered: c.redRecovered.Load(), TierSwitches: c.tierSwitches.Load(),
		Retransmitted: c.retransmitted.Load(), NACKsRefused: c.nacksRefused.Load(),
		BadAudioLevels: c.badAudioLevels.Load(),
		Loss:           c.loss.snapshot(), RTT: c.rtt.snapshot(),
		Jitter: c.jitter.snapshot(), BufferDelay: c.delay.snapshot(),
		BuildTime:  time.Duration(c.buildTime.Load()),
		EncodeTime: time.Duration(c.encodeTime.Load()),
		SendTime:   time.Duration(c.sendTime.Load()),
		SplitSends: c.splitSends.Load(),
	}
	for i := range c.dropped {
		s.Dropped[i] = c.dropped[i].Load()
	}
	for i := range c.joined {
		s.Joined[i] = c.joined[i].Load()
	}
	for i := range c.left {
		s.Left[i] = c.left[i].Load()
	}
	return s
}

func (s *Counters) add(o Counters) {
	s.PacketsIn += o.PacketsIn
	s.BytesIn += o.BytesIn
	s.PacketsOut += o.PacketsOut
	s.BytesOut += o.BytesOut
	for i := range s.Dropped {
		s.Dropped[i] += o.Dropped[i]
	}
	s.Decodes += o.Decodes
	s.FECRecovered += o.FECRecovered
	s.Concealed += o.Concealed
	s.DecodeErrors += o.DecodeErrors
	s.Encodes += o.Encodes
	s.EncodeErrors += o.EncodeErrors
	s.SinkErrors += o.SinkErrors
	s.RoomTicks += o.RoomTicks
	s.REDRecovered += o.REDRecovered
	s.TierSwitches += o.TierSwitches
	s.Retransmitted += o.Retransmitted
	s.NACKsRefused += o.NACKsRefused
	s.BadAudioLevels += o.BadAudioLevels
	for i := range s.Joined {
		s.Joined[i] += o.Joined[i]
	}
	for i := range s.Left {
		s.Left[i] += o.Left[i]
	}
	s.Loss.add(o.Loss)
	s.RTT.add(o.RTT)
	s.Jitter.add(o.Jitter)
	s.BufferDelay.add(o.BufferDelay)
	s.BuildTime += o.BuildTime
	s.EncodeTime += o.EncodeTime
	s.SendTime += o.SendTime
	s.SplitSends += o.SplitSends
}

// addPlayed counts what a speaker's player played in a tick; a packet that
// failed to decode was concealed, and counts as such too.
func (c *counters) addPlayed(pl *jitter.Played) {
	add := func(n *atomic.Uint64, v int) {
		if v > 0 {
			n.Add(uint64(v))
		}
	}
	add(&c.decodes, pl.Decoded)
	add(&c.fecRecovered, pl.Recovered)
	add(&c.concealed, pl.Concealed+pl.Failed)
	add(&c.decodeErrors, pl.Failed)
}
