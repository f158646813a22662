package jitter_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/jitter"
)

// Everything here runs on a fake clock: times are built from base, nothing
// sleeps.
var base = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

const (
	tickDur = 20 * time.Millisecond
	frame   = codec.FrameSamples // 960
)

// at is the n-th 20 ms tick of the fake clock.
func at(n int) time.Time { return base.Add(time.Duration(n) * tickDur) }

// TOC bytes (RFC 6716 Table 2, code 0: one frame).
const (
	toc20     = 9 << 3  // SILK WB 20 ms
	toc10     = 8 << 3  // SILK WB 10 ms
	toc60     = 11 << 3 // SILK WB 60 ms
	toc20CELT = 31 << 3 // CELT FB 20 ms: never carries in-band FEC
)

// tagged is a valid Opus packet (one frame of the TOC's duration) whose
// bytes 2 and 3 carry id, so a test can tell which packet Pop returned. It
// is 4 bytes long: not DTX. Its second byte sets SILK's VAD and LBRR flags:
// a SILK packet made by tagged carries in-band FEC (codec.HasFEC).
func tagged(toc byte, id int) []byte { return []byte{toc, 0xff, byte(id), byte(id >> 8)} }

// idOf reads the tag of a payload made by tagged; -1 for anything else.
func idOf(p []byte) int {
	if len(p) != 4 {
		return -1
	}
	return int(p[2]) | int(p[3])<<8
}

func TestTOCHelpers(t *testing.T) {
	for _, tc := range []struct {
		p    []byte
		want int
	}{
		{tagged(toc20, 1), 960},
		{tagged(toc10, 1), 480},
		{tagged(toc60, 1), 2880},
		{[]byte{toc20}, 960}, // DTX
	} {
		n, err := codec.PacketSamples(tc.p)
		if err != nil || n != tc.want {
			t.Fatalf("PacketSamples(% x) = %d, %v; want %d", tc.p, n, err, tc.want)
		}
	}
	if !codec.IsDTX([]byte{toc20}) || codec.IsDTX(tagged(toc20, 0)) {
		t.Fatal("IsDTX does not match the helpers' assumptions")
	}
}

// pk is one packet of a scripted stream and the time it arrives.
type pk struct {
	ssrc    uint32
	seq     uint16
	ts      uint32
	payload []byte
	arrival time.Time
}

// stream makes n consecutive 20 ms packets with ids id0.., sequence
// numbers from seq0, timestamps from ts0, the first arriving at tick t0 and
// one per tick after it.
func stream(ssrc uint32, n, id0 int, seq0 uint16, ts0 uint32, t0 int) []pk {
	out := make([]pk, n)
	for i := range out {
		out[i] = pk{
			ssrc:    ssrc,
			seq:     seq0 + uint16(i),
			ts:      ts0 + uint32(i*frame),
			payload: tagged(toc20, id0+i),
			arrival: at(t0 + i),
		}
	}
	return out
}

// without removes the packets whose ids are listed.
func without(ps []pk, ids ...int) []pk {
	return slices.DeleteFunc(ps, func(p pk) bool { return slices.Contains(ids, idOf(p.payload)) })
}

// out is one Pop answer, reduced to what the tests compare.
type out struct {
	kind    jitter.Kind
	samples int
	id      int // tag of the payload, -1 if none
	fading  bool
}

func (o out) String() string {
	k := [...]string{"Silence", "Decode", "DecodeFEC", "Conceal"}[o.kind]
	s := fmt.Sprintf("%s/%d", k, o.samples)
	if o.kind == jitter.Decode || o.kind == jitter.DecodeFEC {
		s += fmt.Sprintf("#%d", o.id)
	}
	if o.fading {
		s += "~"
	}
	return s
}

func sil(n int) out      { return out{jitter.Silence, n, -1, false} }
func dec(id int) out     { return out{jitter.Decode, frame, id, false} }
func fec(id int) out     { return out{jitter.DecodeFEC, frame, id, false} }
func conceal(f bool) out { return out{jitter.Conceal, frame, -1, f} }
func rep(o out, n int) []out {
	r := make([]out, n)
	for i := range r {
		r[i] = o
	}
	return r
}

func decs(from, to int) []out {
	var r []out
	for id := from; id <= to; id++ {
		r = append(r, dec(id))
	}
	return r
}

func seq(parts ...any) []out {
	var r []out
	for _, p := range parts {
		switch p := p.(type) {
		case out:
			r = append(r, p)
		case []out:
			r = append(r, p...)
		default:
			panic(fmt.Sprintf("seq: %T", p))
		}
	}
	return r
}

// sim drives a buffer the way the engine does: at every tick it pushes the
// packets that have arrived by then (in arrival order), then pops once.
type sim struct {
	t       *testing.T
	b       *jitter.Buffer
	pkts    []pk // sorted by arrival
	next    int
	results []jitter.PushResult // per packet, in pkts order
	tick    int
	pkt     rtp.Packet
}

func newSim(t *testing.T, cfg jitter.Config, pkts []pk) *sim {
	t.Helper()
	pkts = slices.Clone(pkts)
	slices.SortStableFunc(pkts, func(a, b pk) int { return a.arrival.Compare(b.arrival) })
	return &sim{t: t, b: jitter.New(cfg), pkts: pkts, results: make([]jitter.PushResult, len(pkts))}
}

func (s *sim) push(p pk) jitter.PushResult {
	s.pkt.SSRC, s.pkt.SequenceNumber, s.pkt.Timestamp = p.ssrc, p.seq, p.ts
	s.pkt.Payload = p.payload
	return s.b.Push(&s.pkt, p.arrival)
}

// deliver pushes every packet that has arrived by now.
func (s *sim) deliver(now time.Time) {
	for s.next < len(s.pkts) && !s.pkts[s.next].arrival.After(now) {
		s.results[s.next] = s.push(s.pkts[s.next])
		s.next++
	}
}

// step runs one tick: deliver, then Pop.
func (s *sim) step() out {
	now := at(s.tick)
	s.tick++
	s.deliver(now)
	f := s.b.Pop(now)
	return out{f.Kind, f.Samples, idOf(f.Payload), f.Fading}
}

func (s *sim) run(ticks int) []out {
	r := make([]out, ticks)
	for i := range r {
		r[i] = s.step()
	}
	return r
}

// result is the PushResult of the last pushed copy of the packet with the
// given id.
func (s *sim) result(id int) jitter.PushResult {
	for i := s.next - 1; i >= 0; i-- {
		if idOf(s.pkts[i].payload) == id {
			return s.results[i]
		}
	}
	s.t.Fatalf("packet #%d was not pushed", id)
	return 0
}

func checkOuts(t *testing.T, got, want []out) {
	t.Helper()
	if slices.Equal(got, want) {
		return
	}
	var sb strings.Builder
	for i := range max(len(got), len(want)) {
		g, w := "-", "-"
		if i < len(got) {
			g = got[i].String()
		}
		if i < len(want) {
			w = want[i].String()
		}
		mark := ""
		if g != w {
			mark = "  <--"
		}
		fmt.Fprintf(&sb, "\n  %3d  got %-16s want %-16s%s", i, g, w, mark)
	}
	t.Errorf("Pop sequence differs:%s", sb.String())
}

// checkStats compares selected Stats counters, named as the fields (after
// W3C webrtc-stats).
func checkStats(t *testing.T, st jitter.Stats, want map[string]int64) {
	t.Helper()
	got := map[string]int64{
		"PacketsReceived":                int64(st.PacketsReceived),
		"PacketsLost":                    st.PacketsLost,
		"PacketsDiscarded":               int64(st.PacketsDiscarded),
		"PacketsDuplicated":              int64(st.PacketsDuplicated),
		"JitterBufferEmittedCount":       int64(st.JitterBufferEmittedCount),
		"ConcealedSamples":               int64(st.ConcealedSamples),
		"SilentConcealedSamples":         int64(st.SilentConcealedSamples),
		"ConcealmentEvents":              int64(st.ConcealmentEvents),
		"FecPacketsReceived":             int64(st.FecPacketsReceived),
		"InsertedSamplesForDeceleration": int64(st.InsertedSamplesForDeceleration),
		"RemovedSamplesForAcceleration":  int64(st.RemovedSamplesForAcceleration),
		"Resets":                         int64(st.Resets),
		"TotalSamplesReceived":           int64(st.TotalSamplesReceived),
	}
	keys := make([]string, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		g, ok := got[k]
		if !ok {
			t.Fatalf("checkStats: unknown counter %q", k)
		}
		if g != want[k] {
			t.Errorf("Stats.%s = %d, want %d", k, g, want[k])
		}
	}
}

// 1. Startup: Silence until the start delay is buffered, then Decode in
// timestamp order. Real Opus packets from the codec here, compared byte for
// byte.
func TestStartup(t *testing.T) {
	enc, err := codec.NewEncoder(codec.EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var packets [][]byte
	pcm := make([]int16, frame)
	buf := make([]byte, codec.MaxPacketBytes)
	for i := range n {
		for j := range pcm {
			pcm[j] = int16(8000 * math.Sin(2*math.Pi*440*float64(i*frame+j)/codec.SampleRate))
		}
		m, err := enc.Encode(pcm, buf)
		if err != nil {
			t.Fatal(err)
		}
		if s, err := codec.PacketSamples(buf[:m]); err != nil || s != frame {
			t.Fatalf("encoded packet: %d samples, %v", s, err)
		}
		packets = append(packets, slices.Clone(buf[:m]))
	}

	for _, tc := range []struct {
		name     string
		start    time.Duration
		silences int // ticks of Silence before the first Decode
	}{
		{"default 80 ms", 0, 3},
		{"40 ms", 40 * time.Millisecond, 1},
		{"200 ms", 200 * time.Millisecond, 9},
		{"below MinDelay clamps to 20 ms", 10 * time.Millisecond, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := jitter.New(jitter.Config{StartDelay: tc.start})
			if f := b.Pop(base.Add(-time.Second)); f.Kind != jitter.Silence || f.Samples != frame {
				t.Fatalf("Pop before any packet = %+v, want Silence of 960", f)
			}
			var pkt rtp.Packet
			next := 0 // next packet index expected to decode
			for tick := range n + tc.silences {
				if tick < n {
					pkt.SSRC, pkt.SequenceNumber, pkt.Timestamp = 7, uint16(1000+tick), uint32(5000+tick*frame)
					pkt.Payload = packets[tick]
					if r := b.Push(&pkt, at(tick)); r != jitter.Accepted {
						t.Fatalf("tick %d: Push = %v", tick, r)
					}
				}
				level := b.Stats().BufferLevel
				f := b.Pop(at(tick))
				if tick < tc.silences {
					if f.Kind != jitter.Silence || f.Samples != frame {
						t.Fatalf("tick %d: %+v, want Silence while %v < start delay", tick, f, level)
					}
					continue
				}
				if tick == tc.silences {
					want := max(tc.start, 20*time.Millisecond)
					if tc.start == 0 {
						want = 80 * time.Millisecond
					}
					if level < want {
						t.Errorf("playout started with %v buffered, want at least %v", level, want)
					}
				}
				if f.Kind != jitter.Decode || f.Samples != frame || !slices.Equal(f.Payload, packets[next]) {
					t.Fatalf("tick %d: got %v/%d, want Decode of packet %d", tick, f.Kind, f.Samples, next)
				}
				next++
			}
			if next != n {
				t.Errorf("decoded %d packets, want %d", next, n)
			}
			checkStats(t, b.Stats(), map[string]int64{
				"PacketsReceived": n, "PacketsLost": 0, "PacketsDiscarded": 0,
				"JitterBufferEmittedCount": n * frame, "ConcealedSamples": 0,
				"TotalSamplesReceived": n * frame,
			})
			st := b.Stats()
			// Each packet waited the silences (the start delay less one tick).
			wantDelay := float64(tc.silences) * tickDur.Seconds()
			if got := st.JitterBufferDelay / float64(st.JitterBufferEmittedCount); math.Abs(got-wantDelay) > 1e-9 {
				t.Errorf("mean jitterBufferDelay = %v s, want %v s", got, wantDelay)
			}
		})
	}
}

// 2. Reordering within the window: played in order, nothing concealed.
func TestReorder(t *testing.T) {
	const n = 30
	for _, tc := range []struct {
		name  string
		delay func(i int) time.Duration // extra arrival delay of packet i
	}{
		{"adjacent pairs swapped", func(i int) time.Duration {
			if i%2 == 0 {
				return 25 * time.Millisecond // arrives just after i+1
			}
			return 0
		}},
		{"blocks of three reversed", func(i int) time.Duration {
			return time.Duration(2-i%3) * 21 * time.Millisecond
		}},
		{"one packet 50 ms late", func(i int) time.Duration {
			if i == 10 {
				return 50 * time.Millisecond
			}
			return 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := stream(1, n, 0, 100, 0, 0)
			for i := range ps {
				ps[i].arrival = ps[i].arrival.Add(tc.delay(i))
			}
			s := newSim(t, jitter.Config{}, ps)
			// Run until the last packet plays (or long enough to know it
			// will not), so the counters cover the stream and nothing after.
			var got []out
			for len(got) < n+10 {
				o := s.step()
				got = append(got, o)
				if o.id == n-1 {
					break
				}
			}
			// The first packet decoded is #0, all the rest follow in order.
			first := slices.IndexFunc(got, func(o out) bool { return o.kind != jitter.Silence })
			if first < 0 {
				t.Fatal("nothing played")
			}
			checkOuts(t, got, seq(rep(sil(frame), first), decs(0, n-1)))
			for i, r := range s.results {
				if r != jitter.Accepted {
					t.Errorf("packet #%d: Push = %v, want accepted", idOf(s.pkts[i].payload), r)
				}
			}
			checkStats(t, s.b.Stats(), map[string]int64{
				"PacketsReceived": n, "PacketsLost": 0, "PacketsDiscarded": 0,
				"ConcealedSamples": 0, "ConcealmentEvents": 0, "FecPacketsReceived": 0,
			})
		})
	}
}

// 3. Duplicates: dropped, counted, played once.
func TestDuplicates(t *testing.T) {
	const n = 20
	ps := stream(1, n, 0, 100, 0, 0)
	// #4 twice at once, #7 again 10 ms later, #2 again long after it played.
	dup := func(id int, d time.Duration) pk { p := ps[id]; p.arrival = p.arrival.Add(d); return p }
	all := append(slices.Clone(ps), dup(4, 0), dup(7, 10*time.Millisecond), dup(2, 200*time.Millisecond))
	s := newSim(t, jitter.Config{}, all)
	got := s.run(n + 3)
	checkOuts(t, got, seq(rep(sil(frame), 3), decs(0, n-1)))
	dups := 0
	seen := map[int]bool{}
	for i, p := range s.pkts {
		id := idOf(p.payload)
		want := jitter.Accepted
		if seen[id] {
			want = jitter.Duplicate
			dups++
		}
		seen[id] = true
		if s.results[i] != want {
			t.Errorf("copy of #%d: Push = %v, want %v", id, s.results[i], want)
		}
	}
	checkStats(t, s.b.Stats(), map[string]int64{
		"PacketsDuplicated": int64(dups), "PacketsLost": 0, "PacketsDiscarded": 0,
		"JitterBufferEmittedCount": n * frame,
	})
}

// 4. Late packets: their time has been played.
func TestLate(t *testing.T) {
	t.Run("after its slot was recovered", func(t *testing.T) {
		ps := stream(1, 20, 0, 100, 0, 0)
		ps[5].arrival = at(5 + 6) // plays at tick 8; arrives at tick 11
		s := newSim(t, jitter.Config{}, ps)
		got := s.run(23)
		checkOuts(t, got, seq(rep(sil(frame), 3), decs(0, 4), fec(6), decs(6, 19)))
		if r := s.result(5); r != jitter.Late {
			t.Errorf("Push of #5 = %v, want late", r)
		}
		checkStats(t, s.b.Stats(), map[string]int64{
			"PacketsReceived": 20, "PacketsDiscarded": 1, "PacketsLost": 0,
			"FecPacketsReceived": 1,
		})
	})
	t.Run("too old to place", func(t *testing.T) {
		ps := stream(1, 200, 0, 100, 0, 0)
		old := ps[10]
		old.arrival = at(150) // 140 packets (2.8 s) behind: within ResetJump
		s := newSim(t, jitter.Config{}, append(ps, old))
		s.run(200)
		if r := s.result(10); r != jitter.Late {
			t.Errorf("Push of a 2.8 s old packet = %v, want late", r)
		}
		checkStats(t, s.b.Stats(), map[string]int64{"PacketsDiscarded": 1, "Resets": 0, "PacketsDuplicated": 0})
	})
}

// 5. Sequence number and timestamp wrap-around are invisible.
func TestWrap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		seq   uint16
		ts    uint32
		delay int // this packet, the last before a wrap, arrives after the next one
	}{
		{"sequence number", 65530, 12345, 5},
		{"timestamp", 100, math.MaxUint32 - frame*3 + 1, 2},
		{"both", 65534, math.MaxUint32 - frame*3 + 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 20
			ps := stream(9, n, 0, tc.seq, tc.ts, 0)
			ps[tc.delay].arrival = ps[tc.delay].arrival.Add(25 * time.Millisecond)
			s := newSim(t, jitter.Config{}, ps)
			checkOuts(t, s.run(n+3), seq(rep(sil(frame), 3), decs(0, n-1)))
			for i, r := range s.results {
				if r != jitter.Accepted {
					t.Errorf("packet %d: %v", i, r)
				}
			}
			checkStats(t, s.b.Stats(), map[string]int64{
				"PacketsReceived": n, "PacketsLost": 0, "PacketsDiscarded": 0,
				"ConcealedSamples": 0, "Resets": 0,
			})
		})
	}
}

// 6. SSRC change: a new stream.
func TestSSRCChange(t *testing.T) {
	a := stream(1, 10, 0, 100, 0, 0)
	b := stream(2, 20, 100, 40000, 3_000_000_000, 10)
	s := newSim(t, jitter.Config{}, append(a, b...))
	got := s.run(33)
	// A plays #0..#6 (ticks 3..9); its tail still buffered is dropped; B
	// starts like a fresh stream.
	checkOuts(t, got, seq(rep(sil(frame), 3), decs(0, 6), rep(sil(frame), 3), decs(100, 119)))
	if r := s.result(100); r != jitter.Reset {
		t.Errorf("first packet of the new SSRC: %v, want reset", r)
	}
	for id := 101; id < 120; id++ {
		if r := s.result(id); r != jitter.Accepted {
			t.Errorf("#%d: %v", id, r)
		}
	}
	checkStats(t, s.b.Stats(), map[string]int64{"Resets": 1, "PacketsLost": 0, "PacketsReceived": 30, "ConcealedSamples": 0})
}

// 7. A timestamp jump beyond ResetJump starts a new stream; a smaller one
// is a pause. Either is taken once the next packet confirms it.
func TestTimestampJump(t *testing.T) {
	for _, tc := range []struct {
		name  string
		jump  time.Duration
		reset bool
	}{
		{"forward 4 s", 4 * time.Second, true},
		{"backward 4 s", -4 * time.Second, true},
		{"forward 3.5 s", 3500 * time.Millisecond, true},
		{"forward 2 s", 2 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := stream(1, 10, 0, 100, 1_000_000, 0)
			jump := int64(tc.jump * codec.SampleRate / time.Second)
			b := stream(1, 20, 100, 110, uint32(int64(1_000_000+10*frame)+jump), 10)
			if !tc.reset {
				// A pause: the sender's clock ran on, and so did the arrivals.
				for i := range b {
					b[i].arrival = b[i].arrival.Add(tc.jump)
				}
			}
			s := newSim(t, jitter.Config{}, append(a, b...))
			got := s.run(35 + int(max(tc.jump, 0)/tickDur))
			// The first packet after the jump is held aside until the
			// second one confirms it (a stray packet is not followed).
			want := jitter.Accepted
			if tc.reset {
				want = jitter.Reset
			}
			if r := s.result(100); r != jitter.Outlier {
				t.Errorf("first packet after the jump: %v, want outlier (held aside)", r)
			}
			if r := s.result(101); r != want {
				t.Errorf("second packet after the jump: %v, want %v", r, want)
			}
			// The new packets play, in order.
			var ids []int
			for _, o := range got {
				if o.kind == jitter.Decode && o.id >= 100 {
					ids = append(ids, o.id)
				}
			}
			wantIDs := make([]int, 20)
			for i := range wantIDs {
				wantIDs[i] = 100 + i
			}
			if !slices.Equal(ids, wantIDs) {
				t.Errorf("after the jump decoded %v, want %v", ids, wantIDs)
			}
			var resets int64
			if tc.reset {
				resets = 1
			}
			checkStats(t, s.b.Stats(), map[string]int64{"Resets": resets, "PacketsLost": 0})
		})
	}
}

// 8. One packet lost, the next one buffered: its in-band FEC rebuilds it.
func TestSingleLossFEC(t *testing.T) {
	s := newSim(t, jitter.Config{}, without(stream(1, 12, 0, 100, 0, 0), 5))
	got := s.run(15)
	checkOuts(t, got, seq(rep(sil(frame), 3), decs(0, 4), fec(6), decs(6, 11)))
	checkStats(t, s.b.Stats(), map[string]int64{
		"FecPacketsReceived": 1, "PacketsLost": 1, "ConcealedSamples": 0,
		"ConcealmentEvents": 0, "PacketsDiscarded": 0,
		"TotalSamplesReceived": 12 * frame, "JitterBufferEmittedCount": 11 * frame,
	})
}

// 8b. One packet lost, the next one buffered but without in-band FEC (a
// CELT packet, or an encoder without FEC): the frame is concealed, and no
// FEC is counted.
func TestSingleLossWithoutFEC(t *testing.T) {
	ps := without(stream(1, 12, 0, 100, 0, 0), 5)
	for i := range ps {
		ps[i].payload[0] = toc20CELT
	}
	s := newSim(t, jitter.Config{}, ps)
	got := s.run(15)
	checkOuts(t, got, seq(rep(sil(frame), 3), decs(0, 4), conceal(false), decs(6, 11)))
	checkStats(t, s.b.Stats(), map[string]int64{
		"FecPacketsReceived": 0, "PacketsLost": 1, "ConcealedSamples": frame,
		"ConcealmentEvents": 1,
	})
}

// 9. A burst of three lost: conceal two, recover the third from FEC.
func TestBurstLoss(t *testing.T) {
	s := newSim(t, jitter.Config{}, without(stream(1, 14, 0, 100, 0, 0), 5, 6, 7))
	got := s.run(17)
	checkOuts(t, got, seq(rep(sil(frame), 3), decs(0, 4), conceal(false), conceal(false), fec(8), decs(8, 13)))
	checkStats(t, s.b.Stats(), map[string]int64{
		"ConcealmentEvents": 1, "ConcealedSamples": 2 * frame, "PacketsLost": 3,
		"FecPacketsReceived": 1, "SilentConcealedSamples": 0,
	})
}

// 10. DTX: a sender's pause is silence, not loss.
func TestDTX(t *testing.T) {
	// Ten packets, then a pause of gap ticks (the timestamps skip gap frames,
	// the sequence numbers run on), then ten more; every packet arrives at
	// its media time.
	paused := func(gap int) []pk {
		return append(stream(1, 10, 0, 100, 0, 0), stream(1, 10, 10, 110, uint32((10+gap)*frame), 10+gap)...)
	}
	for _, tc := range []struct {
		name  string
		cfg   jitter.Config
		gap   int
		start int // silences before the first Decode
	}{
		{"1 tick", jitter.Config{}, 1, 3},
		{"3 ticks, next packet arrives just in time", jitter.Config{}, 3, 3},
		{"8 ticks inside a 200 ms buffer", jitter.Config{StartDelay: 200 * time.Millisecond}, 8, 9},
	} {
		t.Run("gap with consecutive sequence numbers/"+tc.name, func(t *testing.T) {
			s := newSim(t, tc.cfg, paused(tc.gap))
			got := s.run(tc.start + 20 + tc.gap)
			checkOuts(t, got, seq(rep(sil(frame), tc.start), decs(0, 9), rep(sil(frame), tc.gap), decs(10, 19)))
			checkStats(t, s.b.Stats(), map[string]int64{
				"ConcealedSamples": 0, "ConcealmentEvents": 0, "PacketsLost": 0,
				"FecPacketsReceived": 0, "PacketsDiscarded": 0,
			})
		})
	}

	t.Run("gap longer than the buffer, no DTX packet", func(t *testing.T) {
		// The buffer runs dry before the packet after the pause arrives:
		// until then nothing tells a pause from a loss, so it conceals;
		// once it knows, the rest of the pause is silence and the next
		// packet plays on time (tick 15+3), not late by the concealment.
		s := newSim(t, jitter.Config{}, paused(5))
		got := s.run(3 + 20 + 5)
		checkOuts(t, got, seq(rep(sil(frame), 3), decs(0, 9), conceal(false), conceal(false), rep(sil(frame), 3), decs(10, 19)))
		checkStats(t, s.b.Stats(), map[string]int64{
			"ConcealedSamples": 2 * frame, "ConcealmentEvents": 1, "PacketsLost": 0,
		})
	})

	t.Run("empty buffer after a DTX packet", func(t *testing.T) {
		// Nine packets, a 1-byte DTX packet, then nothing for a second, then
		// the talk spurt resumes (sequence numbers consecutive).
		ps := stream(1, 10, 0, 100, 0, 0)
		ps[9].payload = []byte{toc20}
		ps = append(ps, stream(1, 10, 10, 110, 60*frame, 60)...)
		s := newSim(t, jitter.Config{}, ps)
		got := s.run(60 + 3 + 10)
		dtx := out{jitter.Decode, frame, -1, false}
		checkOuts(t, got, seq(rep(sil(frame), 3), decs(0, 8), dtx, rep(sil(frame), 60+3-13), decs(10, 19)))
		checkStats(t, s.b.Stats(), map[string]int64{
			"ConcealedSamples": 0, "ConcealmentEvents": 0, "PacketsLost": 0,
			"SilentConcealedSamples": 0,
		})
	})
}

// 11. An outage: conceal, fade after 100 ms, give up after 200 ms, restart
// when packets return.
func TestOutage(t *testing.T) {
	ps := append(stream(1, 10, 0, 100, 0, 0), stream(1, 20, 40, 140, 40*frame, 40)...)
	s := newSim(t, jitter.Config{}, ps)
	got := s.run(63)
	checkOuts(t, got, seq(
		rep(sil(frame), 3), decs(0, 9),
		rep(conceal(false), 5), // 100 ms
		rep(conceal(true), 5),  // fading, up to 200 ms
		rep(sil(frame), 20),    // given up; waiting for the stream, then for the start delay
		decs(40, 59)))
	checkStats(t, s.b.Stats(), map[string]int64{
		"ConcealmentEvents": 1, "ConcealedSamples": 10 * frame, "PacketsLost": 30,
		"PacketsDiscarded": 0, "Resets": 0,
	})

	t.Run("packets return while concealing", func(t *testing.T) {
		// Back after 160 ms (#10..#19 lost): the concealment so far stands
		// for the start of the hole, the rest is concealed and the last
		// frame recovered from FEC; the stream stays on schedule.
		ps := append(stream(1, 10, 0, 100, 0, 0), stream(1, 10, 20, 120, 20*frame, 20)...)
		s := newSim(t, jitter.Config{}, ps)
		got := s.run(33)
		checkOuts(t, got, seq(
			rep(sil(frame), 3), decs(0, 9),
			rep(conceal(false), 5), rep(conceal(true), 4), fec(20),
			decs(20, 29)))
		checkStats(t, s.b.Stats(), map[string]int64{
			"ConcealmentEvents": 1, "ConcealedSamples": 9 * frame, "PacketsLost": 10,
			"FecPacketsReceived": 1,
		})
	})
}

// 14. 60 ms packets: one Decode of 2880 samples, played over three ticks.
func TestLongPackets(t *testing.T) {
	const n = 200 // 12 s
	var ps []pk
	for i := range n {
		ps = append(ps, pk{1, uint16(i), uint32(i * 3 * frame), tagged(toc60, i), at(3 * i)})
	}
	for _, quiet := range []bool{false, true} {
		t.Run(fmt.Sprintf("quiet=%v", quiet), func(t *testing.T) {
			s := newSim(t, jitter.Config{}, ps)
			// The caller's FIFO, as engine/tick.go nextFrame keeps it: Pop
			// only while less than a tick is left.
			fifo, last, skipped, started := 0, -1, 0, false
			for tick := 0; tick < 3*n; tick++ {
				now := at(tick)
				s.deliver(now)
				pops := 0
				for fifo < frame {
					f := s.b.Pop(now)
					pops++
					switch {
					case f.Kind == jitter.Silence && !started:
					case f.Kind == jitter.Decode && f.Samples == 3*frame && idOf(f.Payload) > last:
						started = true
						skipped += idOf(f.Payload) - last - 1
						last = idOf(f.Payload)
					default:
						t.Fatalf("tick %d: %v/%d #%d, want Decode/2880 after #%d", tick, f.Kind, f.Samples, idOf(f.Payload), last)
					}
					fifo += f.Samples
				}
				if started && pops > 1 {
					t.Fatalf("tick %d: %d Pops for one tick", tick, pops)
				}
				fifo -= frame
				s.b.MarkQuiet(quiet)
			}
			if last < n-2 {
				t.Errorf("last packet played #%d, want at least #%d", last, n-2)
			}
			st := s.b.Stats()
			// Loud audio: nothing is dropped. Quiet audio: the buffer may
			// drop whole packets to shed the start-up surplus, and counts
			// each of them.
			if !quiet && skipped > 0 {
				t.Errorf("%d packets skipped in loud audio", skipped)
			}
			if skipped > 2 {
				t.Errorf("%d packets skipped; a jitter-free stream needs at most two", skipped)
			}
			checkStats(t, st, map[string]int64{
				"ConcealedSamples": 0, "PacketsLost": 0, "PacketsDiscarded": 0,
				"InsertedSamplesForDeceleration": 0,
				"RemovedSamplesForAcceleration":  int64(skipped * 3 * frame),
			})
			t.Logf("skipped %d packets, target %v", skipped, st.TargetDelay)
		})
	}
}

// 15. Malformed payloads are dropped and not counted as received.
func TestMalformed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload []byte
	}{
		{"empty", nil},
		{"code 3 without frame count", []byte{toc20 | 3}},
		{"code 3 with zero frames", []byte{toc20 | 3, 0}},
		{"more than 120 ms", []byte{toc60 | 3, 3}},
		{"longer than MaxPacketBytes", append([]byte{toc20}, make([]byte, codec.MaxPacketBytes)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := jitter.New(jitter.Config{})
			pkt := rtp.Packet{Header: rtp.Header{SSRC: 1, SequenceNumber: 5, Timestamp: 960}, Payload: tc.payload}
			if r := b.Push(&pkt, base); r != jitter.Malformed {
				t.Fatalf("Push = %v, want malformed", r)
			}
			// The stream then starts normally with a valid packet of the
			// same sequence number.
			pkt.Payload = tagged(toc20, 1)
			if r := b.Push(&pkt, base); r != jitter.Accepted {
				t.Fatalf("valid packet after it: %v", r)
			}
			checkStats(t, b.Stats(), map[string]int64{"PacketsReceived": 1, "PacketsDuplicated": 0, "PacketsDiscarded": 0})
		})
	}
}

// 17. Overflow: the oldest packets make room.
func TestOverflow(t *testing.T) {
	const capacity, n = 8, 20
	s := newSim(t, jitter.Config{Capacity: capacity}, stream(1, n, 0, 100, 0, 0))
	s.deliver(at(n))
	for i, r := range s.results {
		want := jitter.Accepted
		if i >= capacity {
			want = jitter.Overflow
		}
		if r != want {
			t.Errorf("packet %d: %v, want %v", i, r, want)
		}
	}
	st := s.b.Stats()
	if st.BufferLevel != capacity*tickDur {
		t.Errorf("BufferLevel = %v, want %v (%d packets)", st.BufferLevel, capacity*tickDur, capacity)
	}
	checkStats(t, st, map[string]int64{"PacketsReceived": n, "PacketsDiscarded": n - capacity})
	// What is left plays: the newest eight.
	s.tick = n
	checkOuts(t, s.run(capacity), decs(n-capacity, n-1))

	t.Run("while playing", func(t *testing.T) {
		// Playing from a 3-packet cushion, then a burst of 12 at once: the
		// oldest are dropped and playout skips past them, no concealment.
		ps := stream(1, 30, 0, 100, 0, 0)
		for i := 10; i < 22; i++ {
			ps[i].arrival = at(10)
		}
		for i := 22; i < 30; i++ {
			ps[i].arrival = at(i - 11)
		}
		s := newSim(t, jitter.Config{Capacity: capacity}, ps)
		// #7..#13 are dropped to make room for the burst; playout skips to
		// #14 without concealing the hole.
		checkOuts(t, s.run(26), seq(rep(sil(frame), 3), decs(0, 6), decs(14, 29)))
		for id, want := range map[int]jitter.PushResult{14: jitter.Accepted, 15: jitter.Overflow, 21: jitter.Overflow, 22: jitter.Accepted} {
			if r := s.result(id); r != want {
				t.Errorf("#%d: %v, want %v", id, r, want)
			}
		}
		st := s.b.Stats()
		if st.PacketsDiscarded != 7 {
			t.Errorf("PacketsDiscarded = %d, want 7", st.PacketsDiscarded)
		}
		checkStats(t, st, map[string]int64{"ConcealedSamples": 0, "PacketsLost": 0})
	})
}

// Fewer than 20 ms per packet: Pop answers 10 ms at a time, and the caller
// asks again within the tick.
func TestShortPackets(t *testing.T) {
	const n = 200
	var ps []pk
	for i := range n {
		ps = append(ps, pk{1, uint16(i), uint32(i * frame / 2), tagged(toc10, i), base.Add(time.Duration(i) * tickDur / 2)})
	}
	s := newSim(t, jitter.Config{}, ps)
	fifo, next := 0, 0
	for tick := 0; tick < n/2; tick++ {
		now := at(tick)
		s.deliver(now)
		for fifo < frame {
			f := s.b.Pop(now)
			switch {
			case f.Kind == jitter.Silence && next == 0 && f.Samples == frame:
			case f.Kind == jitter.Decode && f.Samples == frame/2 && idOf(f.Payload) == next:
				next++
			default:
				t.Fatalf("tick %d: %v/%d #%d, want Decode/480 #%d", tick, f.Kind, f.Samples, idOf(f.Payload), next)
			}
			fifo += f.Samples
		}
		fifo -= frame
	}
	if next < n-8 {
		t.Errorf("played %d of %d packets", next, n)
	}
	checkStats(t, s.b.Stats(), map[string]int64{"ConcealedSamples": 0, "PacketsLost": 0, "PacketsDiscarded": 0})
}

// clockedStream is n 20 ms packets from a sender whose clock runs rate
// times as fast as the receiver's, arriving at i*20ms/rate plus delay(i),
// delivered in arrival order.
func clockedStream(n int, rate float64, delay func(i int) time.Duration) []pk {
	ps := make([]pk, n)
	for i := range ps {
		arr := base.Add(time.Duration(float64(i) * float64(tickDur) / rate))
		if delay != nil {
			arr = arr.Add(delay(i))
		}
		ps[i] = pk{1, uint16(i), uint32(i * frame), tagged(toc20, i), arr}
	}
	return ps
}

// 12. Clock drift: a sender 0.5% fast or slow for ten minutes. Drift
// corrections (in quiet frames) keep the buffer at its target, without
// concealment.
func TestClockDrift(t *testing.T) {
	const ticks = 10 * 60 * 50 // ten minutes
	for _, tc := range []struct {
		name string
		rate float64
	}{
		{"sender 0.5% fast", 1.005},
		{"sender 0.5% slow", 0.995},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, jitter.Config{}, clockedStream(int(ticks*tc.rate)+10, tc.rate, nil))
			worst := time.Duration(0)
			for tick := range ticks {
				o := s.step()
				if o.kind == jitter.Conceal || o.kind == jitter.DecodeFEC {
					t.Fatalf("tick %d: %v in a lossless stream", tick, o)
				}
				s.b.MarkQuiet(tick%5 == 0)
				st := s.b.Stats()
				if tick < 50 {
					continue
				}
				d := st.BufferLevel - st.TargetDelay
				if d < -40*time.Millisecond || d > 40*time.Millisecond {
					t.Fatalf("tick %d: BufferLevel %v, TargetDelay %v: more than 40 ms apart", tick, st.BufferLevel, st.TargetDelay)
				}
				if d < 0 {
					d = -d
				}
				worst = max(worst, d)
			}
			st := s.b.Stats()
			t.Logf("worst |level-target| %v; removed %d, inserted %d samples; target %v",
				worst, st.RemovedSamplesForAcceleration, st.InsertedSamplesForDeceleration, st.TargetDelay)
			checkStats(t, st, map[string]int64{
				"ConcealedSamples": 0, "ConcealmentEvents": 0, "PacketsLost": 0, "PacketsDiscarded": 0,
			})
			// Net correction: 0.5% of ten minutes is 3 s (144000 samples),
			// give or take what the buffer holds.
			net := int64(st.RemovedSamplesForAcceleration) - int64(st.InsertedSamplesForDeceleration)
			want := int64(144000)
			if tc.rate > 1 {
				if st.RemovedSamplesForAcceleration == 0 {
					t.Error("RemovedSamplesForAcceleration = 0 for a fast sender")
				}
			} else {
				if st.InsertedSamplesForDeceleration == 0 {
					t.Error("InsertedSamplesForDeceleration = 0 for a slow sender")
				}
				want = -want
			}
			if diff := net - want; diff < -9600 || diff > 9600 {
				t.Errorf("net removed %d samples, want %d ± 9600", net, want)
			}
		})
	}
}

// 13. Adaptive target: down to the floor without jitter, up with jitter
// (few late packets), back down after it, within MinDelay..MaxDelay.
func TestAdaptiveTarget(t *testing.T) {
	const (
		calm1  = 15 * 50 // ticks without jitter
		jitty  = 60 * 50 // then with
		calm2  = 15 * 50 // then without again
		settle = 10 * 50 // the target reaches the floor within 10 s
	)
	for _, tc := range []struct {
		name         string
		cfg          jitter.Config
		floor, ceil  time.Duration
		jitterAbove  time.Duration // target during jitter stays above this
		lateLossMax  float64
		levelAtFloor bool
	}{
		{"defaults", jitter.Config{}, 20 * time.Millisecond, 400 * time.Millisecond, 60 * time.Millisecond, 0.02, true},
		{"MinDelay 60 ms", jitter.Config{MinDelay: 60 * time.Millisecond}, 60 * time.Millisecond, 400 * time.Millisecond, 60 * time.Millisecond, 0.02, true},
		{"MaxDelay 100 ms", jitter.Config{MaxDelay: 100 * time.Millisecond}, 20 * time.Millisecond, 100 * time.Millisecond, 60 * time.Millisecond, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(2025, 3))
			// A constant 200 ms path delay, plus normal jitter (σ 30 ms)
			// for the middle minute; 200 ms is 6.7σ, so no delay is clipped.
			delay := func(i int) time.Duration {
				d := 200 * time.Millisecond
				if i >= calm1 && i < calm1+jitty {
					d += time.Duration(rng.NormFloat64() * float64(30*time.Millisecond))
				}
				return d
			}
			total := calm1 + jitty + calm2
			s := newSim(t, tc.cfg, clockedStream(total+20, 1, delay))
			var atJitterStart, atJitterEnd jitter.Stats
			reachedFloor1, reachedFloor2, reachedCeil := -1, -1, false
			minJ := time.Hour
			for tick := range total + 10 {
				s.step()
				s.b.MarkQuiet(tick%5 == 0)
				st := s.b.Stats()
				td := st.TargetDelay
				if td < tc.floor || td > tc.ceil {
					t.Fatalf("tick %d: target %v outside [%v, %v]", tick, td, tc.floor, tc.ceil)
				}
				reachedCeil = reachedCeil || td == tc.ceil
				// Packets sent at tick i arrive at tick i+10 (200 ms).
				switch phase := tick - 10; {
				case phase < calm1:
					if td == tc.floor && reachedFloor1 < 0 {
						reachedFloor1 = tick
					}
					if phase == calm1-1 {
						atJitterStart = st
					}
				case phase < calm1+jitty:
					if phase >= calm1+2*50 {
						minJ = min(minJ, td)
					}
					if phase == calm1+jitty-1 {
						atJitterEnd = st
					}
				default:
					if td != tc.floor {
						reachedFloor2 = -1
					} else if reachedFloor2 < 0 {
						reachedFloor2 = phase - calm1 - jitty
					}
				}
			}
			if reachedFloor1 < 0 || reachedFloor1 > settle {
				t.Errorf("without jitter the target reached %v at tick %d, want within %d", tc.floor, reachedFloor1, settle)
			}
			if tc.jitterAbove > 0 && minJ <= tc.jitterAbove {
				t.Errorf("with jitter the target fell to %v, want above %v", minJ, tc.jitterAbove)
			}
			if tc.ceil < 400*time.Millisecond && !reachedCeil {
				t.Errorf("target never reached MaxDelay %v", tc.ceil)
			}
			recv := atJitterEnd.PacketsReceived - atJitterStart.PacketsReceived
			late := atJitterEnd.PacketsDiscarded - atJitterStart.PacketsDiscarded
			loss := float64(late) / float64(recv)
			t.Logf("jitter: min target %v, late %d of %d (%.2f%%), concealed %d frames; floor again after %d ticks",
				minJ, late, recv, 100*loss, (atJitterEnd.ConcealedSamples-atJitterStart.ConcealedSamples)/frame, reachedFloor2)
			if loss > tc.lateLossMax {
				t.Errorf("late loss %.2f%%, want at most %.0f%%", 100*loss, 100*tc.lateLossMax)
			}
			if reachedFloor2 < 0 || reachedFloor2 > settle {
				t.Errorf("after the jitter the target is back at %v after %d ticks (-1: not at the end), want within %d",
					tc.floor, reachedFloor2, settle)
			}
			st := s.b.Stats()
			if tc.levelAtFloor && st.BufferLevel > tc.floor+20*time.Millisecond {
				t.Errorf("buffer level %v at the end, want it back near the %v target", st.BufferLevel, tc.floor)
			}
			if st.PacketsLost != 0 || st.Resets != 0 {
				t.Errorf("PacketsLost %d, Resets %d; want 0", st.PacketsLost, st.Resets)
			}
		})
	}
}

// 16. Push and Pop from different goroutines (run with -race).
func TestConcurrentPushPop(t *testing.T) {
	const n = 2000
	b := jitter.New(jitter.Config{})
	var (
		wg      sync.WaitGroup
		results [8]int
		decoded int
		pushed  atomic.Int64
		done    = make(chan struct{})
	)
	wg.Add(3)
	go func() { // the network
		defer wg.Done()
		defer close(done)
		var pkt rtp.Packet
		pkt.SSRC = 3
		for i := range n {
			pkt.SequenceNumber, pkt.Timestamp = uint16(60000+i), uint32(i*frame)
			pkt.Payload = tagged(toc20, i)
			results[b.Push(&pkt, at(i))]++
			pushed.Store(int64(i + 1))
		}
	}()
	go func() { // the mixer: its fake clock never runs ahead of the network's
		defer wg.Done()
		for tick := 0; tick < n; {
			if int(pushed.Load()) <= tick {
				runtime.Gosched()
				continue
			}
			if b.Pop(at(tick)).Kind == jitter.Decode {
				decoded++
			}
			b.MarkQuiet(tick%5 == 0)
			tick++
		}
	}()
	go func() { // a stats reader
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
				_ = b.Stats()
				_ = b.TargetDelay()
			}
		}
	}()
	wg.Wait()
	// Drain what is left.
	for tick := range 200 {
		if b.Pop(at(n+tick)).Kind == jitter.Decode {
			decoded++
		}
	}
	st := b.Stats()
	if st.PacketsReceived != n {
		t.Errorf("PacketsReceived = %d, want %d", st.PacketsReceived, n)
	}
	if st.BufferLevel != 0 {
		t.Errorf("BufferLevel %v after draining", st.BufferLevel)
	}
	if results[jitter.Duplicate]+results[jitter.Malformed]+results[jitter.Reset] != 0 {
		t.Errorf("push results %v", results)
	}
	if st.PacketsLost != 0 || st.Resets != 0 {
		t.Errorf("PacketsLost %d, Resets %d", st.PacketsLost, st.Resets)
	}
	// Every packet was played, discarded (late or for room) or dropped by
	// a drift correction.
	if got := uint64(decoded) + st.PacketsDiscarded + st.RemovedSamplesForAcceleration/frame; got != n {
		t.Errorf("decoded %d + discarded %d + removed %d = %d, want %d (results %v)",
			decoded, st.PacketsDiscarded, st.RemovedSamplesForAcceleration/frame, got, n, results)
	}
	if late := uint64(results[jitter.Late]) + uint64(results[jitter.Overflow]); late > st.PacketsDiscarded {
		t.Errorf("%d late or overflow pushes but PacketsDiscarded = %d", late, st.PacketsDiscarded)
	}
}

// Steady state, push one packet and pop one frame: no allocation.
func TestPushPopAllocs(t *testing.T) {
	b, pkt, i := warmBuffer()
	allocs := testing.AllocsPerRun(1000, func() {
		pushPop(b, pkt, i)
		i++
	})
	if allocs != 0 {
		t.Errorf("%v allocations per push+pop, want 0", allocs)
	}
}

func warmBuffer() (*jitter.Buffer, *rtp.Packet, int) {
	b := jitter.New(jitter.Config{})
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SSRC: 42}}
	pkt.Payload = make([]byte, 80)
	pkt.Payload[0] = toc20
	i := 0
	for ; i < 500; i++ {
		pushPop(b, pkt, i)
	}
	return b, pkt, i
}

func pushPop(b *jitter.Buffer, pkt *rtp.Packet, i int) {
	pkt.SequenceNumber = uint16(i)
	pkt.Timestamp = uint32(i * frame)
	now := at(i)
	b.Push(pkt, now)
	b.Pop(now)
	b.MarkQuiet(i%5 == 0)
}

func BenchmarkJitterPushPop(b *testing.B) {
	buf, pkt, i := warmBuffer()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		pushPop(buf, pkt, i)
		i++
	}
}

// 7b. One packet far from the stream (issue 12: a sequence number 30,000
// or 20,000 ahead with its timestamp in place, or a timestamp 2 s ahead
// with its sequence number in place) is held aside and dropped when the
// next packet follows the stream: nothing the stream sends is late
// because of it, no loss is counted for it, and playout does not jump.
func TestOutlierPacket(t *testing.T) {
	for _, tc := range []struct {
		name   string
		seq    uint16 // added to the stray copy's sequence number
		ts     uint32 // added to its timestamp
		takes  bool   // the stray takes a real packet's place (that one is lost)
		lostTo int64
	}{
		{"sequence number +30000", 30000, 0, false, 0},
		{"sequence number +20000, a stray copy", 20000, 0, false, 0},
		{"timestamp +2 s", 0, 2 * 48000, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 60
			ps := stream(1, n, 0, 1000, 5000, 0)
			stray := ps[20]
			stray.seq += tc.seq
			stray.ts += tc.ts
			stray.payload = tagged(toc20, 500)
			if tc.takes {
				ps = without(ps, 20) // the stray carries #20's sequence number instead
			}
			s := newSim(t, jitter.Config{}, append(ps, stray))
			got := s.run(n + 5)
			if r := s.result(500); r != jitter.Outlier {
				t.Errorf("the stray: %v, want outlier", r)
			}
			var ids []int
			for _, o := range got {
				if o.kind == jitter.Decode {
					ids = append(ids, o.id)
				}
			}
			var want []int
			for i := range n {
				if !(tc.takes && i == 20) {
					want = append(want, i)
				}
			}
			if !slices.Equal(ids, want) {
				t.Errorf("decoded %v, want %v", ids, want)
			}
			st := s.b.Stats()
			if st.PacketsOutlier != 1 || st.PacketsLost != tc.lostTo || st.PacketsDiscarded != 0 || st.Resets != 0 {
				t.Errorf("outliers %d, lost %d, discarded %d, resets %d; want 1, %d, 0, 0",
					st.PacketsOutlier, st.PacketsLost, st.PacketsDiscarded, st.Resets, tc.lostTo)
			}
		})
	}
}

// 7c. A sender that restarts its stream (same SSRC, sequence numbers and
// timestamps somewhere else): its first packet is held aside, its second
// confirms the move, and the buffer starts the new stream with both.
func TestStreamMovesWhenConfirmed(t *testing.T) {
	a := stream(1, 10, 0, 100, 1_000_000, 0)
	b := stream(1, 20, 100, 40000, 3_000_000_000, 10)
	s := newSim(t, jitter.Config{}, append(a, b...))
	got := s.run(40)
	if r := s.result(100); r != jitter.Outlier {
		t.Errorf("first packet of the restarted stream: %v, want outlier", r)
	}
	if r := s.result(101); r != jitter.Reset {
		t.Errorf("second: %v, want reset", r)
	}
	var ids []int
	for _, o := range got {
		if o.kind == jitter.Decode && o.id >= 100 {
			ids = append(ids, o.id)
		}
	}
	if len(ids) != 20 || ids[0] != 100 || ids[19] != 119 {
		t.Errorf("the new stream decoded %v, want 100..119", ids)
	}
	if st := s.b.Stats(); st.PacketsOutlier != 0 || st.Resets != 1 || st.PacketsLost != 0 {
		t.Errorf("outliers %d, resets %d, lost %d; want 0, 1, 0", st.PacketsOutlier, st.Resets, st.PacketsLost)
	}
}

// ExtraDelay: the same arrivals give the same target on a clean link, and
// one raised by ExtraDelay (no more than its distance above the floor)
// on a jittery one, with no more concealment.
func TestExtraDelayRaisesOnlyAJitteryTarget(t *testing.T) {
	const calm, jitty = 15 * 50, 60 * 50
	extra := 10 * time.Millisecond
	rng := rand.New(rand.NewPCG(7, 11))
	delays := make([]time.Duration, calm+jitty+calm+20)
	for i := range delays {
		delays[i] = 200 * time.Millisecond
		if i >= calm && i < calm+jitty {
			delays[i] += time.Duration(rng.NormFloat64() * float64(30*time.Millisecond))
		}
	}
	stream := clockedStream(len(delays), 1, func(i int) time.Duration { return delays[i] })
	plain := newSim(t, jitter.Config{}, stream)
	more := newSim(t, jitter.Config{ExtraDelay: extra}, stream)
	raised := 0
	for tick := range calm + jitty + calm + 10 {
		plain.step()
		more.step()
		a, b := plain.b.Stats().TargetDelay, more.b.Stats().TargetDelay
		switch phase := tick - 10; { // packets arrive 200 ms after they are sent
		case phase > 5*50 && phase < calm, phase > calm+jitty+10*50:
			if a != 20*time.Millisecond || b != a {
				t.Fatalf("tick %d, no jitter: target %v, with ExtraDelay %v; want both at the 20 ms floor", tick, a, b)
			}
		case phase > calm+2*50 && phase < calm+jitty:
			if d := b - a; d < 0 || d > extra {
				t.Fatalf("tick %d, jitter: target %v, with ExtraDelay %v: raised by %v, want 0 to %v", tick, a, b, d, extra)
			} else if d == extra {
				raised++
			}
		}
	}
	if raised < (jitty-2*50)*9/10 {
		t.Errorf("the jittery target was raised by the whole %v in %d of %d ticks, want nine in ten", extra, raised, jitty-2*50)
	}
	if lp, lm := plain.b.Stats().ConcealedSamples, more.b.Stats().ConcealedSamples; lm > lp {
		t.Errorf("concealed: %d samples with ExtraDelay, %d without; want no more", lm, lp)
	}
}

// LastConcealedTimestamp places a concealment in the stream: a frame lost
// between two buffered ones is its own timestamp; when the buffer ran
// empty (the next packets late, in order) it is the timestamp of the
// packet that plays after it.
func TestLastConcealedTimestamp(t *testing.T) {
	const ts0 = 0xFFFFF000 // the timestamps wrap in the run
	ts := uint32(ts0)
	want := ts + 5*frame
	t.Run("lost", func(t *testing.T) {
		ps := without(stream(1, 12, 0, 100, ts0, 0), 5)
		for i := range ps {
			ps[i].payload[0] = toc20CELT // no FEC: the frame is concealed
		}
		s := newSim(t, jitter.Config{}, ps)
		s.run(15)
		st := s.b.Stats()
		if st.ConcealedSamples != frame || st.LastConcealedTimestamp != want {
			t.Errorf("concealed %d samples, the last at timestamp %#x; want %d at %#x",
				st.ConcealedSamples, st.LastConcealedTimestamp, frame, want)
		}
	})
	t.Run("ran empty", func(t *testing.T) {
		ps := stream(1, 20, 0, 100, ts0, 0)
		for i := 5; i < len(ps); i++ {
			ps[i].arrival = ps[i].arrival.Add(8 * tickDur) // all late from #5 on, in order
		}
		s := newSim(t, jitter.Config{}, ps)
		got := s.run(20)
		st := s.b.Stats()
		if st.ConcealedSamples == 0 || st.LastConcealedTimestamp != want {
			t.Errorf("concealed %d samples, the last at timestamp %#x; want some, at %#x (%v)",
				st.ConcealedSamples, st.LastConcealedTimestamp, want, got)
		}
		if i := slices.IndexFunc(got, func(o out) bool { return o.id == 5 }); i < 1 || got[i-1].kind != jitter.Conceal {
			t.Errorf("#5 does not play right after the concealment: %v", got)
		}
	})
}
