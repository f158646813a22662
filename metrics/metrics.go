package metrics

import (
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/jitter"
)

const namespace = "handsup"

// tickBuckets cover a 20 ms tick: fine steps where a healthy tick lands,
// 0.02 s at the deadline, and 0.025 and 0.04 to show how far a late one
// ran over.
var tickBuckets = []float64{.0005, .001, .002, .004, .006, .008, .010, .012, .015, .020, .025, .040}

// Options tune a Collector. The zero value exports no room label.
type Options struct {
	// PerRoom adds the handsup_room_* families, a series per open room
	// labelled room (see the package documentation); default off.
	PerRoom bool
	// MaxRooms caps how many rooms get their own series under PerRoom;
	// rooms beyond it are left out of the handsup_room_* families (they
	// still count in every server-wide family) and counted in
	// handsup_metrics_rooms_omitted. Default 100.
	MaxRooms int
}

// jitterField is one summed jitter-buffer counter.
type jitterField struct {
	name, help string
	perRoom    bool // also a handsup_room_ family under Options.PerRoom
	mayFall    bool // a fall does not mean the buffer restarted
	get        func(*jitter.Stats) float64
}

var jitterFields = [...]jitterField{
	{name: "jitter_packets_lost_total", mayFall: true,
		help: "Speakers' RTP packets that never reached the server (W3C packetsLost: expected minus received, per stream), summed over speakers. Rises with packet loss on speakers' uplinks.",
		get:  func(s *jitter.Stats) float64 { return float64(max(s.PacketsLost, 0)) }},
	{name: "jitter_packets_discarded_total",
		help: "Speakers' RTP packets the jitter buffers threw away (W3C packetsDiscarded): arrived after their play-out time, or pushed out of a full buffer. Rises when network jitter outgrows the buffer's target delay.",
		get:  func(s *jitter.Stats) float64 { return float64(s.PacketsDiscarded) }},
	{name: "jitter_buffer_delay_seconds_total",
		help: "Sum over played samples of the time each waited in a jitter buffer (W3C jitterBufferDelay). Divide its rate by that of handsup_jitter_buffer_emitted_count_total for the mean delay the buffers add.",
		get:  func(s *jitter.Stats) float64 { return s.JitterBufferDelay }},
	{name: "jitter_buffer_target_delay_seconds_total",
		help: "Sum over played samples of the buffer's target delay when each left (W3C jitterBufferTargetDelay). Divide its rate by that of handsup_jitter_buffer_emitted_count_total for the mean target.",
		get:  func(s *jitter.Stats) float64 { return s.JitterBufferTargetDelay }},
	{name: "jitter_buffer_emitted_count_total",
		help: "Samples (48 kHz) the jitter buffers released decoded from received packets (W3C jitterBufferEmittedCount); the denominator of the delay sums.",
		get:  func(s *jitter.Stats) float64 { return float64(s.JitterBufferEmittedCount) }},
	{name: "total_samples_received_total", perRoom: true,
		help: "Samples (48 kHz) played from speakers' streams, concealment included (W3C totalSamplesReceived); about 48000 per second per speaker once their stream started. The denominator of the concealment ratio.",
		get:  func(s *jitter.Stats) float64 { return float64(s.TotalSamplesReceived) }},
	{name: "concealed_samples_total", perRoom: true,
		help: "Samples (48 kHz) the decoders made up because a packet was missing (W3C concealedSamples). Its rate over that of handsup_total_samples_received_total is the share of speech listeners hear as glitches.",
		get:  func(s *jitter.Stats) float64 { return float64(s.ConcealedSamples) }},
	{name: "silent_concealed_samples_total",
		help: "Concealed samples played as silence once a loss lasted too long to mask (W3C silentConcealedSamples). Rises with long outages: a speaker's connection stalled.",
		get:  func(s *jitter.Stats) float64 { return float64(s.SilentConcealedSamples) }},
	{name: "concealment_events_total",
		help: "Runs of concealment, each one audible gap (W3C concealmentEvents). Many short events mean scattered loss; few with many samples mean outages.",
		get:  func(s *jitter.Stats) float64 { return float64(s.ConcealmentEvents) }},
	{name: "fec_packets_received_total",
		help: "Packets whose Opus in-band FEC stood in for the lost packet before them (W3C fecPacketsReceived). Rises with loss when clients send FEC.",
		get:  func(s *jitter.Stats) float64 { return float64(s.FecPacketsReceived) }},
	{name: "inserted_samples_for_deceleration_total",
		help: "Samples inserted by time-stretching (one pitch period at a time) to slow play-out and let a jitter buffer grow (W3C insertedSamplesForDeceleration). Rises when network jitter increases or a client's clock runs slow.",
		get:  func(s *jitter.Stats) float64 { return float64(s.InsertedSamplesForDeceleration) }},
	{name: "removed_samples_for_acceleration_total",
		help: "Samples removed by time-stretching (one pitch period at a time) to speed play-out and shrink a jitter buffer (W3C removedSamplesForAcceleration). Rises when jitter calms down or a client's clock runs fast.",
		get:  func(s *jitter.Stats) float64 { return float64(s.RemovedSamplesForAcceleration) }},
	{name: "jitter_dropped_samples_total",
		help: "Samples of whole packets a jitter buffer dropped because its level ran more than 200 ms over target, a last resort when time-stretching cannot catch up. Should stay at 0.",
		get:  func(s *jitter.Stats) float64 { return float64(s.DroppedSamples) }},
	{name: "jitter_buffer_resets_total",
		help: "Times a speaker's jitter buffer started a new stream: SSRC change or a timestamp jump (client restart or reconnect).",
		get:  func(s *jitter.Stats) float64 { return float64(s.Resets) }},
}

const numJitter = len(jitterFields)

// jvec holds one value per jitterFields entry.
type jvec [numJitter]float64

func jitterVec(s *jitter.Stats) jvec {
	var v jvec
	for i := range jitterFields {
		v[i] = jitterFields[i].get(s)
	}
	return v
}

func (v *jvec) add(o *jvec) {
	for i := range v {
		v[i] += o[i]
	}
}

func (v *jvec) raise(o *jvec) {
	for i := range v {
		v[i] = max(v[i], o[i])
	}
}

// restarted reports whether v cannot follow prev in one buffer: a counter
// fell, so the buffer was replaced.
func (v *jvec) restarted(prev *jvec) bool {
	for i := range v {
		if !jitterFields[i].mayFall && v[i] < prev[i] {
			return true
		}
	}
	return false
}

// roomState is what the collector remembers of an open room between
// scrapes, to keep its jitter counters monotonic.
type roomState struct {
	gen      uint64
	labelled bool // has its own handsup_room_* series
	speakers map[string]*speakerState
	retired  jvec // last seen counters of speakers gone or restarted
	last     jvec // the room's counters as last exported
}

type speakerState struct {
	gen uint64
	v   jvec
}

// update folds a room's speakers into its monotonic jitter counters.
func (rs *roomState) update(speakers []engine.SpeakerSnapshot, gen uint64) *jvec {
	rs.gen = gen
	sum := rs.retired
	for i := range speakers {
		sp := &speakers[i]
		v := jitterVec(&sp.Jitter)
		ss := rs.speakers[sp.ID]
		if ss == nil {
			ss = &speakerState{}
			rs.speakers[sp.ID] = ss
		} else if v.restarted(&ss.v) {
			rs.retired.add(&ss.v)
			sum.add(&ss.v)
		}
		ss.gen, ss.v = gen, v
		sum.add(&v)
	}
	for id, ss := range rs.speakers {
		if ss.gen != gen {
			rs.retired.add(&ss.v)
			sum.add(&ss.v)
			delete(rs.speakers, id)
		}
	}
	rs.last.raise(&sum)
	return &rs.last
}

// Collector is a prometheus.Collector for one engine.
type Collector struct {
	e     *engine.Engine
	opts  Options
	roles []engine.Role
	drops []engine.DropReason
	tick  prometheus.Histogram
	descs []*prometheus.Desc

	rooms, participants, muted, hands                  *prometheus.Desc
	packetsIn, bytesIn, packetsOut, bytesOut, dropped  *prometheus.Desc
	jitter                                             [numJitter]*prometheus.Desc
	targetDelay, interarrival                          *prometheus.Desc
	decodes, fecRecovered, concealedFrames, decodeErrs *prometheus.Desc
	encodes, encodeErrs, sinkErrs                      *prometheus.Desc
	redRecovered, tierSwitches, byTier                 *prometheus.Desc
	badAudioLevels                                     *prometheus.Desc
	retransmitted, nacksRefused                        *prometheus.Desc
	joined, left                                       *prometheus.Desc
	loss, rtt, reportJitter, bufferDelay               *prometheus.Desc
	ticks, overruns, skipped, tickWork, splitSends     *prometheus.Desc
	shedding, shedSpells, shedTicks                    *prometheus.Desc

	// The handsup_room_* families, under Options.PerRoom.
	room struct {
		participants, packetsIn, packetsOut, dropped, targetDelay *prometheus.Desc
		jitter                                                    [numJitter]*prometheus.Desc
		omitted                                                   *prometheus.Desc
	}

	mu         sync.Mutex // serialises Collect; guards what follows
	gen        uint64     // scrapes so far
	roomStates map[*engine.Room]*roomState
	closed     jvec            // jitter counters of closed rooms
	tiers      map[string]bool // tier names seen, exported at 0 when empty
	labelled   int             // rooms with their own series under PerRoom
}

// New makes a collector for e. Register it on a registry of your own.
func New(e *engine.Engine, opts Options) *Collector {
	if opts.MaxRooms <= 0 {
		opts.MaxRooms = 100
	}
	c := &Collector{
		e: e, opts: opts,
		roles:      engine.Roles(),
		drops:      engine.DropReasons(),
		roomStates: make(map[*engine.Room]*roomState),
		tiers:      map[string]bool{},
		tick: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "tick_duration_seconds",
			Help:      "Time one tick of a phase's rooms took to mix, encode and send their 20 ms frame (a phase holds its share of the rooms, engine Config.Phases of them, 4 by default, each ticking every 20 ms). Past 0.02 s the phase falls behind real time (see handsup_tick_overruns_total); growth tracks rooms, speakers and listeners.",
			Buckets:   tickBuckets,
		}),
	}
	for _, t := range engine.DefaultTiers() {
		c.tiers[t.Name] = true
	}

	c.rooms = c.desc("rooms", "Open rooms. Moves as rooms are created and closed.")
	c.participants = c.desc("participants", "Participants in open rooms, by role (listener, speaker, moderator; every role present, 0 when idle). Moves as people join or leave and as moderators bring listeners on stage or send speakers back.", "role")
	c.muted = c.desc("participants_muted", "Participants in open rooms who are muted. A muted speaker still hears the room but is left out of the mix.")
	c.hands = c.desc("hands_raised", "Participants in open rooms with a hand raised, asking to speak; falls as moderators answer.")
	c.joined = c.desc("participants_joined_total", "Participants who joined a room, by the role they joined with.", "role")
	c.left = c.desc("participants_left_total", "Participants who left a room, by reason: left (they went), kicked (a moderator or the app removed them), timeout (their transport lost them: silence past the idle timeout, ICE consent), room_closed (the room closed under them), other (an embedder's own reason).", "reason")

	c.packetsIn = c.desc("rtp_packets_received_total", "RTP packets participants handed to the engine, played or dropped (see handsup_rtp_packets_dropped_total). About 50 per second per talking speaker.")
	c.bytesIn = c.desc("rtp_bytes_received_total", "Bytes of received RTP packets, headers included.")
	c.packetsOut = c.desc("rtp_packets_sent_total", "RTP packets the engine handed to participants' sinks: one per participant per 20 ms tick while the room is not silent (DTX frames are not sent). Refused ones count in handsup_sink_errors_total instead.")
	c.bytesOut = c.desc("rtp_bytes_sent_total", "Bytes of sent RTP packets, the 12-byte header included; listeners share payloads, so this is what the network carries, not what was encoded.")
	c.dropped = c.desc("rtp_packets_dropped_total", "Received RTP packets the engine did not play, by reason: malformed (not RTP), payload_type (not the participant's Opus type), not_speaker (sent by a listener), left (after leaving), duplicate, late (after its play-out time), bad_opus (invalid Opus payload), overflow (jitter buffer full). late and overflow point at the network; malformed, payload_type and bad_opus at a client.", "reason")

	for i, f := range jitterFields {
		c.jitter[i] = c.desc(f.name, f.help)
	}
	c.targetDelay = c.desc("jitter_buffer_target_delay_seconds", "Largest current jitter-buffer target delay among speakers: the play-out delay a buffer chose to absorb its speaker's network jitter. High means someone's network is jittery and everyone hears them late.")
	c.interarrival = c.desc("interarrival_jitter_seconds", "Largest RFC 3550 interarrival jitter among speakers' incoming streams (W3C jitter). Rises with jitter on a speaker's path to the server.")

	c.loss = c.desc("receiver_report_loss_ratio", "Fraction of the stream sent to them that participants' RTCP receiver reports say was lost (0 to 1), one observation per report (about one a second per participant whose client sends RTCP). The listeners' experience of the network: its upper quantiles rising mean listeners hear glitches, and their tiers move to FEC and RED.")
	c.rtt = c.desc("receiver_report_rtt_seconds", "Round trip to participants, from their receiver reports (LSR/DLSR of our sender reports), one observation per report that carries one. NACK retransmissions only help when it is short against the jitter-buffer delay.")
	c.reportJitter = c.desc("receiver_report_jitter_seconds", "Interarrival jitter of the stream sent to them that participants' receiver reports give, one observation per report.")
	c.bufferDelay = c.desc("speaker_buffer_delay_seconds", "Speakers' jitter-buffer delay: once a second for each speaker whose stream played, the mean time its last second of samples waited in the buffer (W3C jitterBufferDelay / jitterBufferEmittedCount). Part of the mouth-to-ear delay everyone hears the speaker with.")

	c.decodes = c.desc("decodes_total", "Opus packets from speakers the engine decoded: 50 per second per talking speaker. rate(handsup_decodes_total) / rate(handsup_ticks_total) is the decodes per tick.")
	c.fecRecovered = c.desc("fec_recovered_frames_total", "Lost frames rebuilt from the in-band FEC of the next packet. Rises with packet loss when clients send FEC.")
	c.concealedFrames = c.desc("concealed_frames_total", "Frames the decoders concealed (packet-loss concealment) because a speaker's packet was missing or corrupt: audible glitches.")
	c.decodeErrs = c.desc("decode_errors_total", "Opus payloads that failed to decode and were concealed instead. Non-zero means a client sends corrupt Opus.")
	c.encodes = c.desc("encodes_total", "Opus frames the engine encoded: per room and tick, one shared mix per tier in use plus one mix-minus per speaker being heard. The engine's main CPU cost; rate(handsup_encodes_total) / rate(handsup_ticks_total) is the encodes per tick.")
	c.encodeErrs = c.desc("encode_errors_total", "Opus encodes that failed; that frame was not sent. Should stay 0.")
	c.sinkErrs = c.desc("sink_errors_total", "Outgoing packets a participant's sink refused (transport queue full or connection gone); the participant stays in the room.")
	c.badAudioLevels = c.desc("audio_level_extensions_bad_total", "RFC 6464 audio-level header extensions from speakers that were not one byte: the level is not read, the packet still plays.")
	c.redRecovered = c.desc("red_recovered_packets_total", "Speakers' lost packets rebuilt from the redundant copies in their RED (RFC 2198) packets. Rises with uplink loss from clients that send RED.")
	c.tierSwitches = c.desc("tier_switches_total", "Participants moved between output tiers by their receiver reports: up at once when loss appears, down one step after a calm spell. A steady climb means flapping links.")
	c.byTier = c.desc("participants_by_tier", "Participants on each output tier (by tier name: hi, mid, low by default, each present at 0 when unused): how many the rooms protect with FEC or RED because their reports show loss.", "tier")
	c.retransmitted = c.desc("retransmitted_packets_total", "Packets sent again to answer participants' NACKs, from the outputs' recent history.")
	c.nacksRefused = c.desc("nacks_refused_total", "NACKed packets not sent again: too old for the history, the participant's round trip too long for the copy to arrive in time, or over its retransmission rate.")

	c.tickWork = c.desc("tick_work_seconds_total", "Wall time of the rooms' ticks, summed, by part: build (under the room's lock: its wait for the lock, the decodes, the mix, every participant's packet queued), encode (the Opus encodes within the build) and send (the sends after it). rate() is the cores each part keeps busy: encode grows with the voices heard and falls while the engine sheds load, build with the participants, send with the listeners and the kernel's cost per datagram.", "part")
	c.splitSends = c.desc("split_send_ticks_total", "Room ticks whose sends ran in parts on several workers: a room of more listeners than its SendSplit (12,000 by default), or one whose sends in one part take longer than 80% of a tick (SplitSendAfter, 16 ms by default), timed tick by tick. Parts keep a large room's ticks on time on a slow or busy machine, at 15-45% more CPU a datagram (they contend for the socket); a climb with no room that large means the server's sends run slow.")
	c.ticks = c.desc("ticks_total", "Engine ticks run; rate() is 50 per second when the clock keeps up.")
	c.overruns = c.desc("tick_overruns_total", "Ticks of a phase's rooms that started after their 20 ms slot (its previous tick ran long, or the process was descheduled) and ran at once to catch up. Audio stays on time while handsup_ticks_skipped_total holds still.")
	c.skipped = c.desc("ticks_skipped_total", "Ticks skipped because a phase's clock fell too far behind (engine MaxCatchUp, 100 ms by default); each is 20 ms of audio lost in that phase's rooms. Non-zero means the server is overloaded.")

	c.shedding = c.desc("load_shedding", "1 while the engine sheds load (engine Config.Shed): a phase's tick ended past 70% of its 20 ms, its encodes an eighth or more of its rooms' work, and every room's Opus encoders run at a lower complexity (1 by default, about half the CPU) until, over 2 s or more, 99% of the ticks have ended within 50%. 0 otherwise.")
	c.shedSpells = c.desc("load_shed_spells_total", "Times the engine started shedding load. A climb with few skipped ticks is shedding doing its job; a steady one means the server runs near its CPU and wants fewer rooms.")
	c.shedTicks = c.desc("load_shed_ticks_total", "Ticks of a phase's rooms run while shedding load; over handsup_ticks_total times the phases (4 by default), the share of the time listeners got the lower-complexity encoding.")

	if opts.PerRoom {
		const of = " One series per open room with its own series (label room, at most Options.MaxRooms rooms); its series vanish when the room closes."
		rd := func(name, help string, labels ...string) *prometheus.Desc {
			return c.desc("room_"+name, help+of, append([]string{"room"}, labels...)...)
		}
		c.room.participants = rd("participants", "A room's participants by role.", "role")
		c.room.packetsIn = rd("rtp_packets_received_total", "A room's received RTP packets.")
		c.room.packetsOut = rd("rtp_packets_sent_total", "A room's sent RTP packets.")
		c.room.dropped = rd("rtp_packets_dropped_total", "A room's dropped RTP packets by reason (as handsup_rtp_packets_dropped_total).", "reason")
		c.room.targetDelay = rd("jitter_buffer_target_delay_seconds", "Largest jitter-buffer target delay among a room's speakers.")
		for i, f := range jitterFields {
			if f.perRoom {
				c.room.jitter[i] = rd(f.name, "A room's "+f.name+" (as handsup_"+f.name+").")
			}
		}
		c.room.omitted = c.desc("metrics_rooms_omitted", fmt.Sprintf("Open rooms without series of their own in the handsup_room_* families: those beyond the cap of %d (-metrics-per-room-max). They still count in every server-wide family.", opts.MaxRooms))
	}
	return c
}

// desc makes a server-wide family's descriptor.
func (c *Collector) desc(name, help string, labels ...string) *prometheus.Desc {
	d := prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
	c.descs = append(c.descs, d)
	return d
}

// ObserveTick records how long one tick took; pass it as
// engine.Config.OnTick. It does not allocate.
func (c *Collector) ObserveTick(d time.Duration) { c.tick.Observe(d.Seconds()) }

// Describe sends every family's descriptor.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	c.tick.Describe(ch)
	for _, d := range c.descs {
		ch <- d
	}
}

func counter(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
}

func gauge(ch chan<- prometheus.Metric, d *prometheus.Desc, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func histogram(ch chan<- prometheus.Metric, d *prometheus.Desc, h engine.Histogram) {
	ch <- prometheus.MustNewConstHistogram(d, h.Count, h.Sum, h.Cumulative())
}

// Collect reads the engine and every open room and sends the families.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.tick.Collect(ch)

	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.e.Stats()
	rooms := c.e.Rooms()
	c.gen++

	byRole := make([]int, len(c.roles))
	byTier := map[string]int{}
	for name := range c.tiers {
		byTier[name] = 0
	}
	var (
		muted, hands, omitted int
		live                  jvec
		target                time.Duration
		interarrival          float64
	)
	for _, r := range rooms {
		s := r.Snapshot()
		rs := c.roomStates[r]
		if rs == nil {
			rs = &roomState{speakers: make(map[string]*speakerState)}
			c.roomStates[r] = rs
		}
		if c.opts.PerRoom && !rs.labelled && c.labelled < c.opts.MaxRooms {
			rs.labelled = true // for as long as the room is open
			c.labelled++
		}
		j := rs.update(s.Speakers, c.gen)
		live.add(j)
		muted += s.Muted
		hands += s.HandsUp
		target = max(target, s.Jitter.TargetDelay)
		interarrival = max(interarrival, s.Jitter.Jitter)
		for i, role := range c.roles {
			byRole[i] += s.ByRole[role]
		}
		for _, t := range s.Tiers {
			byTier[t.Name] += t.Members
			c.tiers[t.Name] = true
		}
		if rs.labelled {
			c.collectRoom(ch, &s, j)
		} else {
			omitted++
		}
	}
	for r, rs := range c.roomStates {
		if rs.gen != c.gen { // closed: keep its counts, forget the room
			c.closed.add(&rs.last)
			if rs.labelled {
				c.labelled--
			}
			delete(c.roomStates, r)
		}
	}
	jit := c.closed
	jit.add(&live)

	gauge(ch, c.rooms, float64(len(rooms)))
	for i, role := range c.roles {
		gauge(ch, c.participants, float64(byRole[i]), role.String())
		counter(ch, c.joined, float64(st.Joined[role]), role.String())
	}
	for i, reason := range engine.LeaveReasons() {
		counter(ch, c.left, float64(st.Left[i]), reason)
	}
	gauge(ch, c.muted, float64(muted))
	gauge(ch, c.hands, float64(hands))
	counter(ch, c.packetsIn, float64(st.PacketsIn))
	counter(ch, c.bytesIn, float64(st.BytesIn))
	counter(ch, c.packetsOut, float64(st.PacketsOut))
	counter(ch, c.bytesOut, float64(st.BytesOut))
	for _, d := range c.drops {
		counter(ch, c.dropped, float64(st.Dropped[d]), d.String())
	}
	for i := range jitterFields {
		counter(ch, c.jitter[i], jit[i])
	}
	gauge(ch, c.targetDelay, target.Seconds())
	gauge(ch, c.interarrival, interarrival)
	histogram(ch, c.loss, st.Loss)
	histogram(ch, c.rtt, st.RTT)
	histogram(ch, c.reportJitter, st.Jitter)
	histogram(ch, c.bufferDelay, st.BufferDelay)

	counter(ch, c.decodes, float64(st.Decodes))
	counter(ch, c.fecRecovered, float64(st.FECRecovered))
	counter(ch, c.concealedFrames, float64(st.Concealed))
	counter(ch, c.decodeErrs, float64(st.DecodeErrors))
	counter(ch, c.encodes, float64(st.Encodes))
	counter(ch, c.encodeErrs, float64(st.EncodeErrors))
	counter(ch, c.sinkErrs, float64(st.SinkErrors))
	counter(ch, c.redRecovered, float64(st.REDRecovered))
	counter(ch, c.badAudioLevels, float64(st.BadAudioLevels))
	counter(ch, c.tierSwitches, float64(st.TierSwitches))
	counter(ch, c.retransmitted, float64(st.Retransmitted))
	counter(ch, c.nacksRefused, float64(st.NACKsRefused))
	for name, n := range byTier {
		gauge(ch, c.byTier, float64(n), name)
	}
	counter(ch, c.ticks, float64(st.Ticks))
	counter(ch, c.tickWork, st.BuildTime.Seconds(), "build")
	counter(ch, c.tickWork, st.EncodeTime.Seconds(), "encode")
	counter(ch, c.tickWork, st.SendTime.Seconds(), "send")
	counter(ch, c.splitSends, float64(st.SplitSends))
	counter(ch, c.overruns, float64(st.Overruns))
	counter(ch, c.skipped, float64(st.Skipped))
	shedding := 0.0
	if st.Shedding {
		shedding = 1
	}
	gauge(ch, c.shedding, shedding)
	counter(ch, c.shedSpells, float64(st.ShedSpells))
	counter(ch, c.shedTicks, float64(st.ShedTicks))
	if c.opts.PerRoom {
		gauge(ch, c.room.omitted, float64(omitted))
	}
}

// collectRoom sends one room's series of the handsup_room_* families.
func (c *Collector) collectRoom(ch chan<- prometheus.Metric, s *engine.RoomSnapshot, j *jvec) {
	for _, role := range c.roles {
		gauge(ch, c.room.participants, float64(s.ByRole[role]), s.ID, role.String())
	}
	counter(ch, c.room.packetsIn, float64(s.Counters.PacketsIn), s.ID)
	counter(ch, c.room.packetsOut, float64(s.Counters.PacketsOut), s.ID)
	for _, d := range c.drops {
		counter(ch, c.room.dropped, float64(s.Counters.Dropped[d]), s.ID, d.String())
	}
	for i := range jitterFields {
		if jitterFields[i].perRoom {
			counter(ch, c.room.jitter[i], j[i], s.ID)
		}
	}
	gauge(ch, c.room.targetDelay, s.Jitter.TargetDelay.Seconds(), s.ID)
}
