package metrics_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/internal/fakeclock"
	"github.com/handsup-audio/handsup/metrics"
)

// speaker sends a tone as real Opus in RTP, one packet per tick.
type speaker struct {
	p    *engine.Participant
	enc  *codec.Encoder
	freq float64
	pcm  [codec.FrameSamples]int16
	buf  [1500]byte
	seq  uint16
	ts   uint32
	n    int
}

func newSpeaker(tb testing.TB, p *engine.Participant, freq float64) *speaker {
	tb.Helper()
	enc, err := codec.NewEncoder(codec.EncoderConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return &speaker{p: p, enc: enc, freq: freq, seq: 100, ts: 4800}
}

// packet encodes the next 20 ms and frames it as RTP.
func (s *speaker) packet(tb testing.TB) []byte {
	signal.Tone(s.pcm[:], s.freq, 8000, s.n*codec.FrameSamples)
	s.n++
	n, err := s.enc.Encode(s.pcm[:], s.buf[12:])
	if err != nil {
		tb.Fatal(err)
	}
	b := s.buf[:12+n]
	b[0], b[1] = 0x80, 111
	binary.BigEndian.PutUint16(b[2:], s.seq)
	binary.BigEndian.PutUint32(b[4:], s.ts)
	binary.BigEndian.PutUint32(b[8:], 0xABCD0000|uint32(s.freq))
	s.seq++
	s.ts += codec.FrameSamples
	return b
}

func (s *speaker) send(tb testing.TB) {
	tb.Helper()
	if err := s.p.WriteRTP(s.packet(tb)); err != nil {
		tb.Fatalf("%s: %v", s.p.ID(), err)
	}
}

// world is an engine on a fake clock with its collector.
type world struct {
	t        *testing.T
	clock    *fakeclock.Clock
	eng      *engine.Engine
	col      *metrics.Collector
	reg      *prometheus.Registry
	srv      *httptest.Server
	speakers []*speaker
	observed int // ticks passed to ObserveTick
	received atomic.Uint64
}

func newWorld(t *testing.T, opts metrics.Options) *world {
	t.Helper()
	w := &world{t: t, clock: fakeclock.New(time.Unix(1_700_000_000, 0))}
	w.eng = engine.New(engine.Config{Now: w.clock.Now, Workers: 2})
	t.Cleanup(w.eng.Close)
	w.col = metrics.New(w.eng, opts)
	w.reg = prometheus.NewPedanticRegistry()
	w.reg.MustRegister(w.col)
	w.srv = httptest.NewServer(promhttp.HandlerFor(w.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	t.Cleanup(w.srv.Close)
	return w
}

func (w *world) sink() engine.Sink {
	return engine.SinkFunc(func(h, payload []byte) error {
		w.received.Add(1)
		return nil
	})
}

func (w *world) join(r *engine.Room, id string, role engine.Role) *engine.Participant {
	w.t.Helper()
	p, err := r.Join(id, engine.ParticipantConfig{Role: role, Sink: w.sink()})
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

// run sends one packet per speaker and ticks, n times, timing each tick
// for the histogram as Engine.Run would.
func (w *world) run(n int) {
	for range n {
		for _, s := range w.speakers {
			s.send(w.t)
		}
		w.clock.Advance(engine.TickInterval)
		start := time.Now()
		w.eng.Tick()
		w.col.ObserveTick(time.Since(start))
		w.observed++
	}
}

// scrape GETs /metrics from the test server and parses the text format.
func (w *world) scrape() scrape {
	w.t.Helper()
	resp, err := http.Get(w.srv.URL)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		w.t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		w.t.Fatal(err)
	}
	return scrape{t: w.t, mfs: mfs}
}

type scrape struct {
	t   *testing.T
	mfs map[string]*dto.MetricFamily
}

// find returns the series of name with exactly the given labels
// ("k=v" pairs), or nil.
func (s scrape) find(name string, labels ...string) *dto.Metric {
	mf := s.mfs[name]
	if mf == nil {
		return nil
	}
	sort.Strings(labels)
	for _, m := range mf.Metric {
		var got []string
		for _, l := range m.Label {
			got = append(got, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(got)
		if strings.Join(got, ",") == strings.Join(labels, ",") {
			return m
		}
	}
	return nil
}

// value is the series' value; the test fails if it is missing.
func (s scrape) value(name string, labels ...string) float64 {
	s.t.Helper()
	m := s.find(name, labels...)
	if m == nil {
		s.t.Fatalf("no series %s{%s}", name, strings.Join(labels, ","))
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	s.t.Fatalf("%s: unexpected type", name)
	return 0
}

func (s scrape) expect(name string, want float64, labels ...string) {
	s.t.Helper()
	if got := s.value(name, labels...); got != want {
		s.t.Errorf("%s{%s} = %v, want %v", name, strings.Join(labels, ","), got, want)
	}
}

func (s scrape) series(name string) int {
	if mf := s.mfs[name]; mf != nil {
		return len(mf.Metric)
	}
	return 0
}

func lint(t *testing.T, c prometheus.Collector) {
	t.Helper()
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

var jitterCounters = []string{
	"handsup_jitter_packets_lost_total",
	"handsup_jitter_packets_discarded_total",
	"handsup_jitter_buffer_delay_seconds_total",
	"handsup_jitter_buffer_target_delay_seconds_total",
	"handsup_jitter_buffer_emitted_count_total",
	"handsup_total_samples_received_total",
	"handsup_concealed_samples_total",
	"handsup_silent_concealed_samples_total",
	"handsup_concealment_events_total",
	"handsup_fec_packets_received_total",
	"handsup_inserted_samples_for_deceleration_total",
	"handsup_removed_samples_for_acceleration_total",
	"handsup_jitter_dropped_samples_total",
	"handsup_jitter_buffer_resets_total",
}

func TestScrape(t *testing.T) {
	w := newWorld(t, metrics.Options{})
	room, err := w.eng.NewRoom("main", engine.RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w.speakers = append(w.speakers, newSpeaker(t, w.join(room, "s1", engine.Speaker), 440))
	w.join(room, "m1", engine.Moderator) // on stage, silent
	var listeners []*engine.Participant
	for i := range 3 {
		listeners = append(listeners, w.join(room, fmt.Sprintf("l%d", i), engine.Listener))
	}
	listeners[1].SetMuted(true)
	listeners[2].RaiseHand()

	good := w.speakers[0].packet(t)
	malformed := [][]byte{
		{0x80},                            // shorter than a header
		good[:12],                         // header, no payload
		append([]byte{0x40}, good[1:]...), // RTP version 1
		[]byte("hello, not rtp"),          // text
	}
	for _, pkt := range malformed {
		if err := w.speakers[0].p.WriteRTP(pkt); err == nil {
			t.Fatalf("malformed packet %x accepted", pkt)
		}
	}
	if err := listeners[0].WriteRTP(good); err == nil {
		t.Fatal("a listener's packet was accepted")
	}

	w.run(40)
	st := w.eng.Stats()
	s := w.scrape()

	s.expect("handsup_rooms", 1)
	s.expect("handsup_participants", 3, "role=listener")
	s.expect("handsup_participants", 1, "role=speaker")
	s.expect("handsup_participants", 1, "role=moderator")
	s.expect("handsup_participants_muted", 1)
	s.expect("handsup_hands_raised", 1)

	if st.PacketsIn != 40+uint64(len(malformed))+1 {
		t.Errorf("engine counted %d packets in", st.PacketsIn)
	}
	s.expect("handsup_rtp_packets_received_total", float64(st.PacketsIn))
	s.expect("handsup_rtp_bytes_received_total", float64(st.BytesIn))
	s.expect("handsup_rtp_packets_sent_total", float64(st.PacketsOut))
	s.expect("handsup_rtp_bytes_sent_total", float64(st.BytesOut))
	if st.PacketsOut == 0 || st.PacketsOut != w.received.Load() {
		t.Errorf("sinks got %d packets, engine counted %d", w.received.Load(), st.PacketsOut)
	}
	s.expect("handsup_rtp_packets_dropped_total", float64(len(malformed)), "reason=malformed")
	s.expect("handsup_rtp_packets_dropped_total", 1, "reason=not_speaker")
	if n := s.series("handsup_rtp_packets_dropped_total"); n != len(engine.DropReasons()) {
		t.Errorf("%d drop series, want %d", n, len(engine.DropReasons()))
	}
	for _, d := range engine.DropReasons() {
		s.expect("handsup_rtp_packets_dropped_total", float64(st.Dropped[d]), "reason="+d.String())
	}

	s.expect("handsup_decodes_total", float64(st.Decodes))
	s.expect("handsup_fec_recovered_frames_total", float64(st.FECRecovered))
	s.expect("handsup_concealed_frames_total", float64(st.Concealed))
	s.expect("handsup_decode_errors_total", float64(st.DecodeErrors))
	s.expect("handsup_encodes_total", float64(st.Encodes))
	s.expect("handsup_encode_errors_total", float64(st.EncodeErrors))
	s.expect("handsup_sink_errors_total", float64(st.SinkErrors))
	if st.Decodes == 0 || st.Encodes == 0 {
		t.Errorf("nothing decoded (%d) or encoded (%d)", st.Decodes, st.Encodes)
	}
	s.expect("handsup_ticks_total", 40)
	s.expect("handsup_tick_work_seconds_total", st.BuildTime.Seconds(), "part=build")
	s.expect("handsup_tick_work_seconds_total", st.EncodeTime.Seconds(), "part=encode")
	s.expect("handsup_tick_work_seconds_total", st.SendTime.Seconds(), "part=send")
	if st.BuildTime <= 0 || st.EncodeTime <= 0 {
		t.Errorf("tick work: build %v, encode %v; want both above 0 after 40 ticks that encoded", st.BuildTime, st.EncodeTime)
	}
	s.expect("handsup_split_send_ticks_total", 0) // five members, 40 quick ticks
	s.expect("handsup_tick_overruns_total", 0)
	s.expect("handsup_ticks_skipped_total", 0)
	s.expect("handsup_tick_duration_seconds", float64(w.observed))
	if s.series("handsup_decodes_per_tick")+s.series("handsup_encodes_per_tick") != 0 {
		t.Error("scrape-computed per-tick gauges are back: operators take rate() of the counters")
	}
	s.expect("handsup_participants_joined_total", 3, "role=listener")
	s.expect("handsup_participants_joined_total", 1, "role=speaker")
	s.expect("handsup_participants_joined_total", 1, "role=moderator")
	for _, reason := range engine.LeaveReasons() {
		s.expect("handsup_participants_left_total", 0, "reason="+reason)
	}
	s.expect("handsup_participants_by_tier", 5, "tier=hi")
	s.expect("handsup_participants_by_tier", 0, "tier=mid")
	s.expect("handsup_participants_by_tier", 0, "tier=low")
	// 40 ticks: the speaker's buffer delay sampled at ticks 50k only.
	s.expect("handsup_speaker_buffer_delay_seconds", 0)
	s.expect("handsup_receiver_report_loss_ratio", 0)

	snap := room.Snapshot()
	js := snap.Jitter
	want := []float64{
		float64(js.PacketsLost), float64(js.PacketsDiscarded), js.JitterBufferDelay,
		js.JitterBufferTargetDelay, float64(js.JitterBufferEmittedCount),
		float64(js.TotalSamplesReceived), float64(js.ConcealedSamples),
		float64(js.SilentConcealedSamples), float64(js.ConcealmentEvents),
		float64(js.FecPacketsReceived), float64(js.InsertedSamplesForDeceleration),
		float64(js.RemovedSamplesForAcceleration), float64(js.DroppedSamples), float64(js.Resets),
	}
	for i, name := range jitterCounters {
		s.expect(name, want[i])
	}
	if js.TotalSamplesReceived == 0 || js.JitterBufferEmittedCount == 0 {
		t.Errorf("jitter buffer played nothing: %+v", js)
	}
	s.expect("handsup_jitter_buffer_target_delay_seconds", js.TargetDelay.Seconds())
	s.expect("handsup_interarrival_jitter_seconds", js.Jitter)
	if s.series("handsup_udp_datagrams_sent_total") != 0 {
		t.Error("UDP families without a transport")
	}

	// Ten more ticks: the tick at 50 samples the talking speaker's delay
	// (the silent moderator's buffer released nothing: not sampled).
	w.run(10)
	s = w.scrape()
	s.expect("handsup_speaker_buffer_delay_seconds", 1)
	if h := s.find("handsup_speaker_buffer_delay_seconds").Histogram; h.GetSampleSum() <= 0 || h.GetSampleSum() > 1 {
		t.Errorf("buffer delay sum %v s, want a delay between 0 and 1 s", h.GetSampleSum())
	}

	// Reports of loss, jitter and RTT land in the histograms' buckets.
	listeners[0].ReportReception(engine.Reception{FractionLost: 0.04, Jitter: 3 * time.Millisecond, RTT: 80 * time.Millisecond})
	listeners[1].ReportReception(engine.Reception{FractionLost: 0, Jitter: 30 * time.Millisecond})
	s = w.scrape()
	s.expect("handsup_receiver_report_loss_ratio", 2)
	s.expect("handsup_receiver_report_jitter_seconds", 2)
	s.expect("handsup_receiver_report_rtt_seconds", 1) // one report knew its RTT
	bucket := func(name string, le float64) uint64 {
		for _, b := range s.find(name).Histogram.Bucket {
			if b.GetUpperBound() == le {
				return b.GetCumulativeCount()
			}
		}
		t.Fatalf("%s has no bucket le=%v", name, le)
		return 0
	}
	if got := bucket("handsup_receiver_report_loss_ratio", 0.03); got != 1 {
		t.Errorf("loss <= 3%%: %d reports, want 1", got)
	}
	if got := bucket("handsup_receiver_report_loss_ratio", 0.05); got != 2 {
		t.Errorf("loss <= 5%%: %d reports, want 2", got)
	}
	if got := bucket("handsup_receiver_report_rtt_seconds", 0.05); got != 0 {
		t.Errorf("rtt <= 50 ms: %d reports, want 0", got)
	}
	s.expect("handsup_participants_by_tier", 1, "tier=mid") // 4% loss: FEC

	// Leaves by reason.
	listeners[2].Leave()
	if err := room.Kick("l1", engine.ReasonKicked); err != nil {
		t.Fatal(err)
	}
	if err := room.Kick("m1", "spam"); err != nil {
		t.Fatal(err)
	}
	s = w.scrape()
	s.expect("handsup_participants_left_total", 1, "reason=left")
	s.expect("handsup_participants_left_total", 1, "reason=kicked")
	s.expect("handsup_participants_left_total", 1, "reason=other")
	s.expect("handsup_participants_left_total", 0, "reason=timeout")

	lint(t, w.col)
}

func TestPerRoom(t *testing.T) {
	w := newWorld(t, metrics.Options{PerRoom: true})
	a, _ := w.eng.NewRoom("a", engine.RoomConfig{})
	b, _ := w.eng.NewRoom("b", engine.RoomConfig{})
	w.speakers = append(w.speakers,
		newSpeaker(t, w.join(a, "s", engine.Speaker), 300),
		newSpeaker(t, w.join(b, "s", engine.Moderator), 500))
	for i := range 4 {
		w.join(a, fmt.Sprint("l", i), engine.Listener)
	}
	w.join(b, "l", engine.Listener)
	_ = a.Participants()[1].WriteRTP([]byte{1, 2, 3}) // a listener: not_speaker
	_ = w.speakers[1].p.WriteRTP([]byte{0x80, 111})   // malformed
	w.run(30)

	s := w.scrape()
	s.expect("handsup_rooms", 2)
	s.expect("handsup_room_participants", 4, "room=a", "role=listener")
	s.expect("handsup_room_participants", 1, "room=a", "role=speaker")
	s.expect("handsup_room_participants", 0, "room=a", "role=moderator")
	s.expect("handsup_room_participants", 1, "room=b", "role=listener")
	s.expect("handsup_room_participants", 1, "room=b", "role=moderator")
	s.expect("handsup_room_rtp_packets_dropped_total", 1, "room=a", "reason=not_speaker")
	s.expect("handsup_room_rtp_packets_dropped_total", 1, "room=b", "reason=malformed")
	s.expect("handsup_room_rtp_packets_dropped_total", 0, "room=a", "reason=malformed")
	if n := s.series("handsup_room_rtp_packets_dropped_total"); n != 2*len(engine.DropReasons()) {
		t.Errorf("%d drop series, want %d", n, 2*len(engine.DropReasons()))
	}
	// The server-wide families stay unlabelled beside the breakdown.
	s.expect("handsup_participants", 5, "role=listener")
	s.expect("handsup_rtp_packets_dropped_total", 1, "reason=malformed")
	s.expect("handsup_metrics_rooms_omitted", 0)

	st := w.eng.Stats()
	sum := func(name string) float64 {
		return s.value(name, "room=a") + s.value(name, "room=b")
	}
	if got := sum("handsup_room_rtp_packets_received_total"); got != float64(st.PacketsIn) {
		t.Errorf("packets received summed over rooms %v, engine %d", got, st.PacketsIn)
	}
	if got := sum("handsup_room_rtp_packets_sent_total"); got != float64(st.PacketsOut) {
		t.Errorf("packets sent summed over rooms %v, engine %d", got, st.PacketsOut)
	}
	sa, sb := a.Snapshot(), b.Snapshot()
	s.expect("handsup_room_total_samples_received_total", float64(sa.Jitter.TotalSamplesReceived), "room=a")
	s.expect("handsup_room_concealed_samples_total", float64(sb.Jitter.ConcealedSamples), "room=b")
	s.expect("handsup_room_jitter_buffer_target_delay_seconds", sa.Jitter.TargetDelay.Seconds(), "room=a")
	s.expect("handsup_total_samples_received_total", float64(sa.Jitter.TotalSamplesReceived+sb.Jitter.TotalSamplesReceived))
	lint(t, w.col)

	// Room b closes: its series go, server-wide counters keep its counts.
	sent := s.value("handsup_rtp_packets_sent_total")
	samples := s.value("handsup_total_samples_received_total")
	if err := w.eng.CloseRoom("b"); err != nil {
		t.Fatal(err)
	}
	w.speakers = w.speakers[:1]
	s = w.scrape()
	s.expect("handsup_rooms", 1)
	if s.find("handsup_room_participants", "room=b", "role=listener") != nil ||
		s.find("handsup_room_rtp_packets_received_total", "room=b") != nil {
		t.Error("closed room b still has series")
	}
	if got := s.value("handsup_rtp_packets_sent_total"); got < sent {
		t.Errorf("packets sent fell from %v to %v when a room closed", sent, got)
	}
	if got := s.value("handsup_total_samples_received_total"); got < samples {
		t.Errorf("samples received fell from %v to %v when a room closed", samples, got)
	}
	s.expect("handsup_participants_left_total", 2, "reason=room_closed")
}

// TestPerRoomCap: rooms beyond MaxRooms get no series of their own, are
// counted as omitted, and take a slot once one frees.
func TestPerRoomCap(t *testing.T) {
	w := newWorld(t, metrics.Options{PerRoom: true, MaxRooms: 2})
	for _, id := range []string{"a", "b", "c"} {
		r, _ := w.eng.NewRoom(id, engine.RoomConfig{})
		w.join(r, "l", engine.Listener)
	}
	s := w.scrape()
	labelled := map[string]bool{}
	for _, m := range s.mfs["handsup_room_participants"].GetMetric() {
		for _, l := range m.Label {
			if l.GetName() == "room" {
				labelled[l.GetValue()] = true
			}
		}
	}
	if len(labelled) != 2 {
		t.Fatalf("rooms with series %v, want 2 (the cap)", labelled)
	}
	s.expect("handsup_metrics_rooms_omitted", 1)
	s.expect("handsup_participants", 3, "role=listener") // all three count

	var gone string
	for id := range labelled {
		gone = id
		break
	}
	if err := w.eng.CloseRoom(gone); err != nil {
		t.Fatal(err)
	}
	w.scrape() // frees the closed room's slot
	s = w.scrape()
	if n := s.series("handsup_room_participants"); n != 2*len(engine.Roles()) {
		t.Errorf("%d room participant series, want both open rooms' (%d)", n, 2*len(engine.Roles()))
	}
	s.expect("handsup_metrics_rooms_omitted", 0)
}

// TestDefaultHasNoRoomLabel: with the zero Options, many rooms export no
// room label anywhere, and an idle engine exports its gauges at 0.
func TestDefaultHasNoRoomLabel(t *testing.T) {
	w := newWorld(t, metrics.Options{})
	s := w.scrape()
	s.expect("handsup_rooms", 0)
	for _, role := range engine.Roles() {
		s.expect("handsup_participants", 0, "role="+role.String())
	}
	s.expect("handsup_participants_by_tier", 0, "tier=hi")
	s.expect("handsup_jitter_buffer_target_delay_seconds", 0)
	for i := range 100 {
		r, _ := w.eng.NewRoom(fmt.Sprint("room-", i), engine.RoomConfig{})
		w.join(r, "l", engine.Listener)
	}
	s = w.scrape()
	s.expect("handsup_rooms", 100)
	for name, mf := range s.mfs {
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "room" {
					t.Fatalf("%s carries a room label by default", name)
				}
			}
		}
	}
}

// TestJitterCountersMonotonic: speakers leaving or stepping down take
// their jitter buffers with them; the exported counters must not fall.
func TestJitterCountersMonotonic(t *testing.T) {
	w := newWorld(t, metrics.Options{})
	room, _ := w.eng.NewRoom("r", engine.RoomConfig{})
	s1 := newSpeaker(t, w.join(room, "s1", engine.Speaker), 300)
	s2 := newSpeaker(t, w.join(room, "s2", engine.Speaker), 700)
	w.speakers = []*speaker{s1, s2}
	w.run(30)

	last := map[string]float64{}
	check := func(step string) {
		t.Helper()
		s := w.scrape()
		for _, name := range jitterCounters {
			v := s.value(name)
			if v < last[name] {
				t.Errorf("%s: %s fell from %v to %v", step, name, last[name], v)
			}
			last[name] = v
		}
	}
	check("start")
	before := last["handsup_total_samples_received_total"]

	s2.p.Leave()
	w.speakers = []*speaker{s1}
	w.run(10)
	check("after s2 left")

	if err := s1.p.SetRole(engine.Listener); err != nil {
		t.Fatal(err)
	}
	w.speakers = nil
	w.run(5)
	check("after s1 stepped down")
	if got := last["handsup_total_samples_received_total"]; got <= before {
		t.Errorf("samples received %v, want more than %v", got, before)
	}

	if err := s1.p.SetRole(engine.Speaker); err != nil { // a fresh buffer
		t.Fatal(err)
	}
	w.speakers = []*speaker{s1}
	w.run(20)
	check("after s1 came back")
	if got := w.scrape().value("handsup_participants", "role=speaker"); got != 1 {
		t.Errorf("speakers %v, want 1", got)
	}
}

func TestPerRoomLint(t *testing.T) {
	w := newWorld(t, metrics.Options{PerRoom: true})
	room, _ := w.eng.NewRoom("r", engine.RoomConfig{})
	w.speakers = []*speaker{newSpeaker(t, w.join(room, "s", engine.Speaker), 440)}
	w.run(3)
	lint(t, w.col)
}

func TestObserveTickDoesNotAllocate(t *testing.T) {
	c := metrics.New(engine.New(engine.Config{Workers: 1}), metrics.Options{})
	if n := testing.AllocsPerRun(1000, func() { c.ObserveTick(3 * time.Millisecond) }); n != 0 {
		t.Errorf("ObserveTick allocates %v times", n)
	}
}

// TestRunWithOnTick wires ObserveTick as engine.Config.OnTick, runs the
// real clock while scraping concurrently, and checks that every tick was
// observed.
func TestRunWithOnTick(t *testing.T) {
	var col *metrics.Collector
	eng := engine.New(engine.Config{OnTick: func(t engine.TickTime) { col.ObserveTick(t.Took) }})
	defer eng.Close()
	col = metrics.New(eng, metrics.Options{PerRoom: true})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	room, _ := eng.NewRoom("r", engine.RoomConfig{})
	p, err := room.Join("s", engine.ParticipantConfig{Role: engine.Speaker})
	if err != nil {
		t.Fatal(err)
	}
	sp := newSpeaker(t, p, 440)
	for range 20 {
		if _, err := room.Join(fmt.Sprint("l", room.Len()), engine.ParticipantConfig{}); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- eng.Run(ctx) }()
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if _, err := reg.Gather(); err != nil {
					t.Error(err)
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}
	for range 10 { // a speaker talking meanwhile
		pkt := sp.packet(t)
		_ = p.WriteRTP(pkt)
		time.Sleep(engine.TickInterval)
	}
	wg.Wait()
	cancel()
	<-ran

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var ticks float64
	var observed uint64
	for _, mf := range mfs {
		switch mf.GetName() {
		case "handsup_ticks_total":
			ticks = mf.Metric[0].Counter.GetValue()
		case "handsup_tick_duration_seconds":
			observed = mf.Metric[0].Histogram.GetSampleCount()
		}
	}
	if ticks == 0 || float64(observed) != ticks {
		t.Errorf("%d ticks observed, %v run", observed, ticks)
	}
}

// BenchmarkCollect is one scrape (Gather: collect and build the metric
// families, without text encoding) of a room with 5 speakers and 10,000
// listeners.
func BenchmarkCollect(b *testing.B) {
	for _, perRoom := range []bool{false, true} {
		b.Run(fmt.Sprintf("perRoom=%v", perRoom), func(b *testing.B) {
			clock := fakeclock.New(time.Unix(1_700_000_000, 0))
			eng := engine.New(engine.Config{Now: clock.Now, Workers: 1})
			defer eng.Close()
			room, err := eng.NewRoom("bench", engine.RoomConfig{})
			if err != nil {
				b.Fatal(err)
			}
			sink := engine.SinkFunc(func(h, p []byte) error { return nil })
			var speakers []*speaker
			for i := range 5 {
				p, err := room.Join(fmt.Sprint("s", i), engine.ParticipantConfig{Role: engine.Speaker, Sink: sink})
				if err != nil {
					b.Fatal(err)
				}
				speakers = append(speakers, newSpeaker(b, p, 300+float64(i)*150))
			}
			for i := range 10000 {
				if _, err := room.Join(fmt.Sprint("l", i), engine.ParticipantConfig{Sink: sink}); err != nil {
					b.Fatal(err)
				}
			}
			for range 50 {
				for _, s := range speakers {
					s.send(b)
				}
				clock.Advance(engine.TickInterval)
				eng.Tick()
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(metrics.New(eng, metrics.Options{PerRoom: perRoom}))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := reg.Gather(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
