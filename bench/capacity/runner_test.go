package capacity

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/bench/internal/sim"
	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/engine"
)

// testTuning keeps the runner tests short: a 200 ms warm-up (the jitter
// buffers start within 80 ms), 2 s of looped speech, a listener cost of 3
// repeats of 10 tick pairs.
var testTuning = tuning{
	warmup:     10,
	loop:       2 * time.Second,
	floorTicks: 50,
	floorMin:   50,
	repeats:    3,
	repeatMin:  10,

	fanWarmup:     25,
	fanTicks:      12,
	fanAllocTicks: 2,
}

func TestRunSmallRoom(t *testing.T) {
	cfg := Config{Rooms: 1, Speakers: 2, Active: 1, Listeners: 10, Duration: 500 * time.Millisecond, Seed: 1}
	res, err := run(context.Background(), cfg, testTuning)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", res)
	if res.Ticks != 25 {
		t.Errorf("ticks = %d, want 25 (500 ms)", res.Ticks)
	}
	// The talker decodes every tick; the silent speaker's rare DTX and
	// comfort-noise packets add about 0.1.
	if math.Abs(res.DecodesPerTick-float64(cfg.Active)) > 0.5 {
		t.Errorf("decodes per tick = %.2f, want about %d", res.DecodesPerTick, cfg.Active)
	}
	if res.EncodesPerTick < 1 || res.EncodesPerTick > float64(cfg.Speakers+1) {
		t.Errorf("encodes per tick = %.2f, want 1..%d", res.EncodesPerTick, cfg.Speakers+1)
	}
	// Every listener hears the shared encoder every tick (no DTX on output).
	if res.ListenerPacketsPerTick < float64(cfg.Listeners)-0.5 || res.ListenerBytesPerTick < 12*res.ListenerPacketsPerTick {
		t.Errorf("listeners got %.1f packets, %.0f bytes per tick, want %d packets of header and payload",
			res.ListenerPacketsPerTick, res.ListenerBytesPerTick, cfg.Listeners)
	}
	if res.PacketsOutPerTick < res.ListenerPacketsPerTick {
		t.Errorf("packets out per tick %.1f < listener packets %.1f", res.PacketsOutPerTick, res.ListenerPacketsPerTick)
	}
	if res.DecodeUS <= 0 || res.EncodeUS <= 0 || res.CodecFloorUsPerTick <= 0 {
		t.Errorf("codec floor %.1f µs (decode %.1f µs, encode %.1f µs), want > 0",
			res.CodecFloorUsPerTick, res.DecodeUS, res.EncodeUS)
	}
	if res.CPUusPerTick <= 0 || res.OverheadRatio <= 0 {
		t.Errorf("cpu %.1f µs per tick, overhead ratio %.2f, want > 0", res.CPUusPerTick, res.OverheadRatio)
	}
	if res.TickP50us <= 0 || res.TickP50us > res.TickP99us || res.TickP99us > res.TickMaxus {
		t.Errorf("tick times p50 %.0f, p99 %.0f, max %.0f µs: want 0 < p50 ≤ p99 ≤ max",
			res.TickP50us, res.TickP99us, res.TickMaxus)
	}
	if c := res.ListenerCost; c == nil || c.Listeners != cfg.Listeners || c.Repeats != testTuning.repeats {
		t.Errorf("listener cost %+v with %d listeners, want it measured over %d repeats", c, cfg.Listeners, testTuning.repeats)
	}
	if res.DroppedPackets != 0 {
		t.Errorf("the engine dropped %d of the clients' packets", res.DroppedPackets)
	}
}

func TestRunNoListenersHasNoBaseline(t *testing.T) {
	cfg := Config{Rooms: 2, Speakers: 1, Active: 1, Duration: 100 * time.Millisecond, Seed: 2}
	res, err := run(context.Background(), cfg, testTuning)
	if err != nil {
		t.Fatal(err)
	}
	if res.NsPerListenerTick != nil || res.ListenerCost != nil {
		t.Errorf("listener cost %v (%+v) with no listeners, want neither", res.NsPerListenerTick, res.ListenerCost)
	}
	if math.Abs(res.DecodesPerTick-2) > 0.5 || res.ListenerPacketsPerTick != 0 {
		t.Errorf("2 rooms of one talker: %.2f decodes and %.1f listener packets per tick, want about 2 and 0",
			res.DecodesPerTick, res.ListenerPacketsPerTick)
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := run(ctx, Config{Rooms: 1, Speakers: 1, Active: 1, Duration: time.Minute}, testTuning)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Run took %v to notice its context ended", d)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{Rooms: 1, Speakers: 5, Active: 3, Listeners: 10, Duration: time.Second}
	if err := ok.Validate(); err != nil {
		t.Fatalf("%+v: %v", ok, err)
	}
	for name, mod := range map[string]func(*Config){
		"no rooms":        func(c *Config) { c.Rooms = 0 },
		"negative":        func(c *Config) { c.Listeners = -1 },
		"active>speakers": func(c *Config) { c.Active = 6 },
		"too short":       func(c *Config) { c.Duration = time.Millisecond },
		"one transport listener (its twin has as many)": func(c *Config) { c.TransportListeners = 1 },
		"negative transport listeners":                  func(c *Config) { c.TransportListeners = -2 },
	} {
		c := ok
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: %+v validates", name, c)
		}
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("%s: Run accepts %+v", name, c)
		}
	}
}

func TestSenderDoesNotAllocate(t *testing.T) {
	st, err := sim.EncodeStream(signal.NewVoice(3), 10)
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.New(engine.Config{})
	defer eng.Close()
	room, err := eng.NewRoom("r", engine.RoomConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := room.Join("s", engine.ParticipantConfig{Role: engine.Speaker})
	if err != nil {
		t.Fatal(err)
	}
	snd := sender{p: p, Sender: sim.NewSender(&st, 1, 0, 0)}
	var buf rtpBuf
	if n := testing.AllocsPerRun(200, func() { snd.next(&buf) }); n != 0 {
		t.Fatalf("sending a packet allocates %.1f times", n)
	}
	if c := room.Counters(); c.PacketsIn == 0 || c.Dropped[engine.DropMalformed] != 0 {
		t.Fatalf("the engine got %d packets, %d malformed", c.PacketsIn, c.Dropped[engine.DropMalformed])
	}
}

// The listener cost's clock must resolve a tick's worth of CPU time, down
// to single decodes, not scheduler ticks.
func TestThreadCPUTimeIsFine(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPUTime()
	deadline := time.Now().Add(2 * time.Second)
	steps, last := 0, start
	for last-start < 2*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("thread CPU time moved %v in 2 s of spinning", last-start)
		}
		if now := threadCPUTime(); now != last {
			steps++
			last = now
		}
	}
	if steps < 20 {
		t.Fatalf("thread CPU time moved 2 ms in %d steps, want fine resolution", steps)
	}
}

// What one listener costs is measured with its spread, and with 10,000
// listeners it stands clear of the noise: a positive figure, the median of
// the repeats, in the JSON with the least and greatest repeat.
func TestRunListenerCost(t *testing.T) {
	cfg := Config{Rooms: 1, Speakers: 2, Active: 1, Listeners: 10000, Duration: 200 * time.Millisecond, Seed: 4}
	res, err := run(context.Background(), cfg, testTuning)
	if err != nil {
		t.Fatal(err)
	}
	c := res.ListenerCost
	if c == nil {
		t.Fatal("no listener cost with listeners")
	}
	t.Logf("%+v", *c)
	if !c.Resolved || res.NsPerListenerTick == nil || c.NsMin == nil || c.NsMedian == nil || c.NsMax == nil {
		t.Fatalf("listener cost not resolved with %d listeners: %s", cfg.Listeners, c.Note)
	}
	if ns := *res.NsPerListenerTick; ns <= 0 || ns != *c.NsMedian || *c.NsMin > ns || ns > *c.NsMax {
		t.Errorf("ns_per_listener_tick %.1f, repeats %.1f..%.1f (median %.1f): want the positive median of the repeats",
			ns, *c.NsMin, *c.NsMax, *c.NsMedian)
	}
	if c.Listeners != cfg.Listeners || c.Repeats != testTuning.repeats || c.TicksPerRepeat != testTuning.repeatMin {
		t.Errorf("measured %d listeners over %d × %d ticks, want %d over %d × %d",
			c.Listeners, c.Repeats, c.TicksPerRepeat, cfg.Listeners, testTuning.repeats, testTuning.repeatMin)
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Ns   *float64 `json:"ns_per_listener_tick"`
		Cost *struct {
			Min    *float64 `json:"ns_min"`
			Median *float64 `json:"ns_median"`
			Max    *float64 `json:"ns_max"`
		} `json:"listener_cost"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Ns == nil || out.Cost == nil || out.Cost.Min == nil || out.Cost.Median == nil || out.Cost.Max == nil {
		t.Errorf("JSON lacks the figure or its spread: %s", b)
	}
}

// The twin rooms do the same codec work: their decodes and encodes are the
// same calls, so the difference of their CPU is the listeners' alone.
func TestListenerCostTwinsDoTheSameCodecWork(t *testing.T) {
	cfg := Config{Rooms: 3, Speakers: 4, Active: 2, Listeners: 50, Duration: time.Second, Seed: 5}
	streams, err := preEncode(context.Background(), cfg, 100)
	if err != nil {
		t.Fatal(err)
	}
	with, err := newPairedRoom(cfg, streams, cfg.Listeners, 0, listeners{})
	if err != nil {
		t.Fatal(err)
	}
	defer with.s.eng.Close()
	twin, err := newPairedRoom(cfg, streams, 1, 0, listeners{})
	if err != nil {
		t.Fatal(err)
	}
	defer twin.s.eng.Close()
	for k := range 200 {
		with.step(k, false)
		twin.step(k, false)
	}
	a, b := with.s.eng.Stats(), twin.s.eng.Stats()
	if a.Decodes == 0 || a.Encodes == 0 || a.Decodes != b.Decodes || a.Encodes != b.Encodes || a.Concealed != b.Concealed {
		t.Fatalf("room with %d listeners: %d decodes, %d encodes, %d concealed; twin with one: %d, %d, %d; want the same, and some",
			cfg.Listeners, a.Decodes, a.Encodes, a.Concealed, b.Decodes, b.Encodes, b.Concealed)
	}
	if a.PacketsOut-b.PacketsOut != 200*uint64(cfg.Listeners-1) {
		t.Errorf("the room with %d listeners sent %d packets more than its twin in 200 ticks, want %d",
			cfg.Listeners, a.PacketsOut-b.PacketsOut, 200*(cfg.Listeners-1))
	}
}

// The figure is the median repeat; a cost the repeats do not agree on, or
// that is not positive, is reported as not resolved, never as a number.
func TestListenerCostSummary(t *testing.T) {
	const listeners, repeats, per = 101, 5, 4
	ticks := func(f func(k int) time.Duration) (with, without []time.Duration) {
		for k := range repeats * per {
			without = append(without, time.Millisecond)
			with = append(with, time.Millisecond+f(k))
		}
		return with, without
	}
	for _, tc := range []struct {
		name     string
		extra    func(k int) time.Duration // with minus without, tick k
		resolved bool
		median   float64
	}{
		{"steady", func(int) time.Duration { return 100 * 50 * time.Nanosecond }, true, 50},
		{"one repeat apart", func(k int) time.Duration { return time.Duration(100 * (50 + 10*(k/per/4))) }, true, 50},
		{"free", func(int) time.Duration { return 0 }, false, 0},
		{"negative", func(int) time.Duration { return -100 * 50 * time.Nanosecond }, false, 0},
		{"noise", func(k int) time.Duration { return time.Duration(1-2*(k/per%2)) * 3 * time.Microsecond }, false, 0},
		{"disagreeing", func(k int) time.Duration { return time.Duration(100 * 20 * (1 + 3*(k/per%2))) }, false, 0},
	} {
		c := ListenerCost{Listeners: listeners, Repeats: repeats, TicksPerRepeat: per}
		c.summarize(ticks(tc.extra))
		if c.Resolved != tc.resolved {
			t.Errorf("%s: resolved %v (%s), want %v", tc.name, c.Resolved, c.Note, tc.resolved)
			continue
		}
		if !tc.resolved {
			if c.NsMin != nil || c.NsMedian != nil || c.NsMax != nil || !strings.Contains(c.Note, "not resolved") {
				t.Errorf("%s: unresolved cost reports %v..%v..%v, note %q; want no figures and a note", tc.name, c.NsMin, c.NsMedian, c.NsMax, c.Note)
			}
			continue
		}
		if *c.NsMedian != tc.median || *c.NsMin > *c.NsMedian || *c.NsMax < *c.NsMedian || c.Note != "" {
			t.Errorf("%s: %.1f..%.1f..%.1f ns (%q), want median %.1f", tc.name, *c.NsMin, *c.NsMedian, *c.NsMax, c.Note, tc.median)
		}
	}
}

// The rooms' order is balanced: over n ticks each of n rooms runs first
// once and right after each other room once.
func TestBalancedOrder(t *testing.T) {
	for _, n := range []int{2, 4, 6} {
		first := make([]int, n)
		after := map[[2]int]int{}
		order := make([]int, n)
		for k := 7; k < 7+n; k++ {
			balancedOrder(k, order)
			seen := map[int]bool{}
			for j, r := range order {
				seen[r] = true
				if j > 0 {
					after[[2]int{order[j-1], r}]++
				}
			}
			if len(seen) != n {
				t.Fatalf("n=%d: tick %d order %v is not a permutation", n, k, order)
			}
			first[order[0]]++
		}
		for r := range n {
			if first[r] != 1 {
				t.Errorf("n=%d: room %d ran first %d times in %d ticks, want once", n, r, first[r], n)
			}
			for q := range n {
				if q != r && after[[2]int{q, r}] != 1 {
					t.Errorf("n=%d: room %d ran right after room %d %d times, want once", n, r, q, after[[2]int{q, r}])
				}
			}
		}
	}
}
