package impair

import (
	"bytes"
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// t0 is the simulated clock's zero.
var t0 = time.Unix(1_000_000, 0)

// spacing is the packet interval of the simulated streams: 20 ms audio.
const spacing = 20 * time.Millisecond

// arrival is one delivery: the packet's sequence number and times.
type arrival struct {
	seq      uint32
	sent, at time.Duration
	size     int
}

// run sends n packets of size bytes (at least 4) on a link made from cfg,
// one every gap, each carrying its number, and returns every delivery in
// order, the clock stepping by gap and draining at the end.
func run(t testing.TB, cfg Config, n, size int, gap time.Duration) ([]arrival, LinkStats) {
	t.Helper()
	l := New(cfg)
	var out []arrival
	pkt := make([]byte, size)
	deliver := func(p []byte, at time.Time) {
		seq := binary.BigEndian.Uint32(p)
		out = append(out, arrival{seq: seq, sent: time.Duration(seq) * gap, at: at.Sub(t0), size: len(p)})
	}
	out = make([]arrival, 0, n+n/8)
	for i := range n {
		now := t0.Add(time.Duration(i) * gap)
		binary.BigEndian.PutUint32(pkt, uint32(i))
		l.Send(pkt, now)
		if i%64 == 63 { // now and then: the order is the same, the race detector's work less
			l.Deliver(now, deliver)
			checkAddsUp(t, l.Stats(), l.Pending())
		}
	}
	l.Deliver(t0.Add(time.Duration(n)*gap+time.Hour), deliver)
	if l.Pending() != 0 {
		t.Fatalf("%d packets still in flight after draining", l.Pending())
	}
	checkAddsUp(t, l.Stats(), 0)
	for i := 1; i < len(out); i++ {
		if out[i].at < out[i-1].at {
			t.Fatalf("delivery %d at %v before delivery %d at %v", i, out[i].at, i-1, out[i-1].at)
		}
	}
	return out, l.Stats()
}

// checkAddsUp fails unless st accounts for every packet once, with
// pending in flight.
func checkAddsUp(t testing.TB, st LinkStats, pending int) {
	t.Helper()
	if st.InFlight != uint64(pending) || st.Sent+st.Duplicated != st.Delivered+st.Lost+st.QueueDrops+st.InFlight {
		t.Fatalf("stats %+v do not add up with %d in flight", st, pending)
	}
}

func TestLoss10(t *testing.T) {
	cfg, _ := Profile("loss-10")
	cfg.Seed = 1
	const n = 20000
	out, st := run(t, cfg, n, 100, spacing)
	loss := float64(st.Lost) / n
	t.Logf("loss-10: %d of %d lost (%.2f%%)", st.Lost, n, 100*loss)
	if math.Abs(loss-0.10) > 0.01 {
		t.Errorf("loss = %.4f, want 0.10 ± 0.01", loss)
	}
	if uint64(len(out)) != st.Delivered || st.Delivered+st.Lost != n {
		t.Errorf("delivered %d (stats %d) + lost %d != sent %d", len(out), st.Delivered, st.Lost, n)
	}
	if st.MaxDelay != 0 || st.Reordered != 0 || st.Duplicated != 0 {
		t.Errorf("loss-10 did more than lose packets: %+v", st)
	}
}

// lossRuns returns the mean loss and mean length of runs of consecutive
// losses among n packets, from the sequence numbers delivered.
func lossRuns(out []arrival, n int) (loss, meanRun float64) {
	got := make([]bool, n)
	for _, a := range out {
		got[a.seq] = true
	}
	lost, runs := 0, 0
	for i, ok := range got {
		if !ok {
			lost++
			if i == 0 || got[i-1] {
				runs++
			}
		}
	}
	return float64(lost) / float64(n), float64(lost) / float64(runs)
}

func TestGilbertElliott(t *testing.T) {
	// The Gilbert model: every bad-state packet lost, no good-state loss,
	// so loss = p/(p+r) and loss bursts are geometric with mean 1/r.
	g := GilbertElliott{PGoodToBad: 0.05, PBadToGood: 0.3, LossBad: 1}
	const n = 60000
	out, st := run(t, Config{Burst: &g, Seed: 2}, n, 20, spacing)
	loss, burst := lossRuns(out, n)
	t.Logf("gilbert: loss %.4f (want %.4f), mean burst %.3f (want %.3f)", loss, g.MeanLoss(), burst, g.MeanBadRun())
	if math.Abs(loss-g.MeanLoss()) > 0.01 {
		t.Errorf("loss = %.4f, want %.4f ± 0.01", loss, g.MeanLoss())
	}
	if math.Abs(burst/g.MeanBadRun()-1) > 0.05 {
		t.Errorf("mean burst = %.3f, want %.3f ± 5%%", burst, g.MeanBadRun())
	}
	if st.Lost != uint64(n-len(out)) {
		t.Errorf("stats lost %d, counted %d", st.Lost, n-len(out))
	}

	// Full Gilbert–Elliott, as edge-bursty. Its long outages make a
	// sample's loss vary more: over seeds, σ = 0.006 at 120,000 packets
	// (σ = 0.003 for the Gilbert case above), so the margins are over 3σ.
	cfg, _ := Profile("edge-bursty")
	cfg = Config{Burst: cfg.Burst, Seed: 3}
	const m = 120000
	out, _ = run(t, cfg, m, 20, spacing)
	loss, burst = lossRuns(out, m)
	t.Logf("edge-bursty model: loss %.4f (want %.4f), mean burst %.2f", loss, cfg.Burst.MeanLoss(), burst)
	if math.Abs(loss-cfg.Burst.MeanLoss()) > 0.02 {
		t.Errorf("loss = %.4f, want %.4f ± 0.02", loss, cfg.Burst.MeanLoss())
	}
	// A loss burst goes on while the state stays bad and loses the next
	// packet too, so its mean is 1/(1 − LossBad·(1−PBadToGood)) = 7.35
	// packets (random 10% loss gives 1.1).
	wantBurst := 1 / (1 - cfg.Burst.LossBad*(1-cfg.Burst.PBadToGood))
	if math.Abs(burst/wantBurst-1) > 0.1 {
		t.Errorf("mean burst = %.2f, want %.2f ± 10%%", burst, wantBurst)
	}
}

// delays returns the send-to-arrival delay of every delivery.
func delays(out []arrival) []float64 {
	d := make([]float64, len(out))
	for i, a := range out {
		d[i] = float64(a.at - a.sent)
	}
	return d
}

func meanStd(x []float64) (mean, std float64) {
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	for _, v := range x {
		std += (v - mean) * (v - mean)
	}
	return mean, math.Sqrt(std / float64(len(x)-1))
}

func TestJitterNormal(t *testing.T) {
	// A base delay far above σ, so the clamp at zero never bites.
	const sigma = 30 * time.Millisecond
	cfg := Config{Delay: 500 * time.Millisecond, Jitter: sigma, Reorder: true, Seed: 4}
	out, st := run(t, cfg, 20000, 100, spacing)
	mean, std := meanStd(delays(out))
	t.Logf("normal: mean %v std %v, reordered %d, stats mean %v max %v",
		time.Duration(mean), time.Duration(std), st.Reordered, st.MeanDelay, st.MaxDelay)
	if math.Abs(std/float64(sigma)-1) > 0.10 {
		t.Errorf("std = %v, want %v ± 10%%", time.Duration(std), sigma)
	}
	if math.Abs(mean-float64(cfg.Delay)) > float64(time.Millisecond) {
		t.Errorf("mean delay = %v, want %v ± 1 ms", time.Duration(mean), cfg.Delay)
	}
	if st.Reordered == 0 {
		t.Error("jitter with Reorder set reordered nothing")
	}
}

func TestJitterLogNormal(t *testing.T) {
	const j = 25 * time.Millisecond
	cfg := Config{Delay: 20 * time.Millisecond, Jitter: j, JitterDist: LogNormal, Reorder: true, Seed: 5}
	out, _ := run(t, cfg, 50000, 100, spacing)
	d := delays(out)
	mean, std := meanStd(d)
	slices.Sort(d)
	extra := func(v float64) float64 { return (v - float64(cfg.Delay)) / float64(j) }
	t.Logf("lognormal: min %v, median extra %.3f·J, mean extra %.3f·J, std %.3f·J, p99.9 extra %.2f·J",
		time.Duration(d[0]), extra(d[len(d)/2]), extra(mean), std/float64(j), extra(d[len(d)*999/1000]))
	if d[0] < float64(cfg.Delay) {
		t.Errorf("min delay %v below the base %v", time.Duration(d[0]), cfg.Delay)
	}
	// s = 1: mean e^{1/2}/√((e−1)e) = 0.763, median 1/√((e−1)e) = 0.463.
	if m := extra(mean); math.Abs(m-0.763) > 0.03 {
		t.Errorf("mean extra delay %.3f·J, want 0.763·J", m)
	}
	if m := extra(d[len(d)/2]); math.Abs(m-0.463) > 0.02 {
		t.Errorf("median extra delay %.3f·J, want 0.463·J", m)
	}
	if math.Abs(std/float64(j)-1) > 0.10 {
		t.Errorf("std %.3f·J, want 1 ± 10%%", std/float64(j))
	}
}

func TestFIFO(t *testing.T) {
	cfg := Config{Delay: 50 * time.Millisecond, Jitter: 30 * time.Millisecond, Seed: 6}
	out, st := run(t, cfg, 5000, 100, spacing)
	for i, a := range out {
		if a.seq != uint32(i) {
			t.Fatalf("delivery %d is packet %d: FIFO link reordered", i, a.seq)
		}
	}
	if st.Reordered != 0 || len(out) != 5000 {
		t.Errorf("FIFO: %d delivered, %d reordered; want 5000, 0", len(out), st.Reordered)
	}

	// The same draws with Reorder set: jitter-30, which does reorder.
	cfg, _ = Profile("jitter-30")
	cfg.Seed = 6
	_, st = run(t, cfg, 5000, 100, spacing)
	t.Logf("jitter-30: %.1f%% of packets arrive after a later one, mean delay %v", 100*float64(st.Reordered)/5000, st.MeanDelay)
	if st.Reordered < 5000/10 {
		t.Errorf("jitter-30 reordered %d of 5000, want many", st.Reordered)
	}
}

func TestReorder5(t *testing.T) {
	cfg, _ := Profile("reorder-5")
	cfg.Seed = 7
	const n = 20000
	out, st := run(t, cfg, n, 100, spacing)
	// A held packet arrives 50 ms late, after the next two, so it is
	// reordered unless the two after it were held too.
	held, late, maxSeq := 0, 0, -1
	for _, a := range out {
		if d := a.at - a.sent; d == cfg.ReorderDelay {
			held++
		} else if d != 0 {
			t.Fatalf("packet %d delayed %v, want 0 or %v", a.seq, d, cfg.ReorderDelay)
		}
		if int(a.seq) < maxSeq {
			late++
		}
		maxSeq = max(maxSeq, int(a.seq))
	}
	frac := float64(st.Reordered) / n
	t.Logf("reorder-5: %d held, %d reordered (%.2f%%)", held, st.Reordered, 100*frac)
	if uint64(late) != st.Reordered || late > held || late < held*99/100 {
		t.Errorf("held %d, reordered %d (stats %d): want reordered = stats, just under held", held, late, st.Reordered)
	}
	if math.Abs(frac-0.05) > 0.005 {
		t.Errorf("reordered fraction %.4f, want 0.05 ± 0.005", frac)
	}
	if len(out) != n {
		t.Errorf("delivered %d of %d", len(out), n)
	}
}

func TestDuplicate5(t *testing.T) {
	cfg, _ := Profile("duplicate-5")
	cfg.Seed = 8
	const n = 20000
	l := New(cfg)
	var got [][]byte
	var at []time.Duration
	pkt := make([]byte, 50)
	for i := range n {
		binary.BigEndian.PutUint32(pkt, uint32(i))
		l.Send(pkt, t0.Add(time.Duration(i)*spacing))
	}
	l.Deliver(t0.Add(time.Hour), func(p []byte, a time.Time) {
		got = append(got, slices.Clone(p))
		at = append(at, a.Sub(t0))
	})
	st := l.Stats()
	frac := float64(st.Duplicated) / n
	t.Logf("duplicate-5: %d duplicated (%.2f%%)", st.Duplicated, 100*frac)
	if math.Abs(frac-0.05) > 0.005 {
		t.Errorf("duplicated fraction %.4f, want 0.05 ± 0.005", frac)
	}
	if uint64(len(got)) != n+st.Duplicated || st.Delivered != uint64(len(got)) {
		t.Fatalf("delivered %d (stats %d), want %d + %d", len(got), st.Delivered, n, st.Duplicated)
	}
	dups := 0
	for i := 1; i < len(got); i++ {
		if bytes.Equal(got[i], got[i-1]) {
			dups++
			if at[i]-at[i-1] != duplicateGap {
				t.Errorf("copy of packet %d %v after it, want %v", binary.BigEndian.Uint32(got[i]), at[i]-at[i-1], duplicateGap)
			}
		}
	}
	if uint64(dups) != st.Duplicated || st.Reordered != 0 {
		t.Errorf("%d copies right behind their originals, %d reordered; want %d, 0", dups, st.Reordered, st.Duplicated)
	}
}

func TestRateCap(t *testing.T) {
	// 100-byte packets at 80 kbit/s take 10 ms each; the queue holds five.
	cfg := Config{RateBps: 80_000, QueueBytes: 500, Delay: 5 * time.Millisecond}
	l := New(cfg)
	pkt := make([]byte, 100)
	for i := range 10 {
		pkt[0] = byte(i)
		l.Send(pkt, t0) // a burst: five fit, five are dropped
	}
	var got []time.Duration
	var ids []byte
	collect := func(p []byte, at time.Time) { got, ids = append(got, at.Sub(t0)), append(ids, p[0]) }
	l.Deliver(t0.Add(time.Second), collect)
	want := []time.Duration{15, 25, 35, 45, 55}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(got, want) || !slices.Equal(ids, []byte{0, 1, 2, 3, 4}) {
		t.Errorf("burst arrived %v as %v, want %v as [0 1 2 3 4]", got, ids, want)
	}
	if st := l.Stats(); st.QueueDrops != 5 || st.Delivered != 5 {
		t.Errorf("queue drops %d, delivered %d; want 5, 5", st.QueueDrops, st.Delivered)
	}

	// A second burst at 100 ms, the link idle, fits whole; 25 ms later
	// 15 ms of it still waits, so three of a third burst fit.
	got, ids = got[:0], ids[:0]
	for i := range 4 {
		pkt[0] = byte(10 + i)
		l.Send(pkt, t0.Add(100*time.Millisecond))
	}
	for i := range 4 {
		pkt[0] = byte(20 + i)
		l.Send(pkt, t0.Add(125*time.Millisecond))
	}
	l.Deliver(t0.Add(time.Second), collect)
	want = []time.Duration{115, 125, 135, 145, 155, 165, 175}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !slices.Equal(got, want) || !slices.Equal(ids, []byte{10, 11, 12, 13, 20, 21, 22}) {
		t.Errorf("second burst arrived %v as %v, want %v as [10 11 12 13 20 21 22]", got, ids, want)
	}
	if st := l.Stats(); st.QueueDrops != 6 {
		t.Errorf("queue drops %d, want 6", st.QueueDrops)
	}

	// Below the rate nothing waits: 3g-poor's cap carries 20 ms Opus.
	cfg, _ = Profile("3g-poor")
	cfg = Config{RateBps: cfg.RateBps, QueueBytes: cfg.QueueBytes}
	out, st := run(t, cfg, 1000, 160, spacing)
	if st.QueueDrops != 0 || len(out) != 1000 || st.MaxDelay != txTime(160, cfg.RateBps) {
		t.Errorf("64 kbit/s through 200 kbit/s: %d drops, %d delivered, max delay %v; want 0, 1000, %v",
			st.QueueDrops, len(out), st.MaxDelay, txTime(160, cfg.RateBps))
	}
}

func TestDeterminism(t *testing.T) {
	cfg, _ := Profile("wifi-congested")
	cfg.Burst = &GilbertElliott{PGoodToBad: 0.02, PBadToGood: 0.3, LossBad: 0.8}
	cfg.Duplicate = 0.03
	cfg.RateBps, cfg.QueueBytes = 300_000, 3000
	cfg.Seed = 9
	a, sa := run(t, cfg, 5000, 120, 2*time.Millisecond)
	b, sb := run(t, cfg, 5000, 120, 2*time.Millisecond)
	if !slices.Equal(a, b) || sa != sb {
		t.Fatal("two links with the same seed and sends differ")
	}
	t.Logf("wifi-congested+: %+v", sa)
	if sa.Lost == 0 || sa.Duplicated == 0 || sa.Reordered == 0 || sa.QueueDrops == 0 {
		t.Errorf("not every impairment showed: %+v", sa)
	}
	cfg.Seed = 10
	c, _ := run(t, cfg, 5000, 120, 2*time.Millisecond)
	if slices.Equal(a, c) {
		t.Error("seeds 9 and 10 gave the same deliveries")
	}
}

func TestWindow(t *testing.T) {
	// Total loss from 10 s to 40 s after the first packet, nothing before
	// or after.
	cfg := Config{Loss: 1, Start: 10 * time.Second, Stop: 40 * time.Second}
	const n = 50 * int(time.Second/spacing)
	out, st := run(t, cfg, n, 20, spacing)
	got := make([]bool, n)
	for _, a := range out {
		got[a.seq] = true
	}
	for i, ok := range got {
		s := time.Duration(i) * spacing
		if want := s < cfg.Start || s >= cfg.Stop; ok != want {
			t.Fatalf("packet sent at %v delivered %v, want %v", s, ok, want)
		}
	}
	if want := uint64(30 * time.Second / spacing); st.Lost != want {
		t.Errorf("lost %d, want %d", st.Lost, want)
	}

	// SetEpoch moves the window: from an epoch 5 s before the first
	// packet, loss covers its first 35 s instead.
	l := New(cfg)
	l.SetEpoch(t0.Add(-5 * time.Second))
	delivered := 0
	for i := range n {
		l.Send([]byte{1}, t0.Add(time.Duration(i)*spacing))
	}
	l.Deliver(t0.Add(time.Hour), func([]byte, time.Time) { delivered++ })
	if want := n - int(30*time.Second/spacing); delivered != want || l.Stats().Lost != uint64(n-want) {
		t.Errorf("with the epoch 5 s early: %d delivered, want %d", delivered, want)
	}
	// The edges, on the same epoch: Start is in, Stop is out.
	l = New(cfg)
	l.SetEpoch(t0.Add(-5 * time.Second))
	l.Send([]byte{1}, t0.Add(5*time.Second-time.Nanosecond)) // 10 s − 1 ns: outside
	l.Send([]byte{2}, t0.Add(5*time.Second))                 // 10 s: inside
	l.Send([]byte{3}, t0.Add(35*time.Second))                // 40 s: outside
	var ids []byte
	l.Deliver(t0.Add(time.Hour), func(p []byte, _ time.Time) { ids = append(ids, p[0]) })
	if !slices.Equal(ids, []byte{1, 3}) {
		t.Errorf("window edges delivered %v, want [1 3]", ids)
	}
}

func TestDeliverStableAndReentrant(t *testing.T) {
	l := New(Config{})
	for i := range 5 {
		l.Send([]byte{byte(i)}, t0)
	}
	var ids []byte
	l.Deliver(t0, func(p []byte, _ time.Time) {
		ids = append(ids, p[0])
		if p[0] < 3 {
			l.Send([]byte{p[0] + 10}, t0) // same time: after the five
		}
	})
	if want := []byte{0, 1, 2, 3, 4, 10, 11, 12}; !slices.Equal(ids, want) {
		t.Errorf("delivered %v, want %v", ids, want)
	}
}

func TestAllocs(t *testing.T) {
	cfg, _ := Profile("wifi-congested")
	l := New(cfg)
	pkt := make([]byte, 200)
	now := t0
	fn := func([]byte, time.Time) {}
	step := func() {
		now = now.Add(spacing)
		l.Send(pkt, now)
		l.Deliver(now, fn)
	}
	for range 1000 {
		step() // fill the pool and the heap
	}
	if a := testing.AllocsPerRun(1000, step); a > 0.01 {
		t.Errorf("%.3f allocations per packet in steady state, want 0", a)
	}
}

func TestProfiles(t *testing.T) {
	names := map[string]bool{}
	for _, p := range Profiles() {
		if names[p.Name] {
			t.Errorf("profile %q twice", p.Name)
		}
		names[p.Name] = true
		c, ok := Profile(p.Name)
		if !ok || c.Delay != p.Config.Delay || c.Loss != p.Config.Loss || p.Description == "" {
			t.Errorf("Profile(%q) = %+v, %v", p.Name, c, ok)
		}
	}
	for _, n := range []string{"clean", "lte-good", "wifi-congested", "3g-poor", "edge-bursty",
		"loss-10", "loss-20", "jitter-30", "duplicate-5", "reorder-5"} {
		if !names[n] {
			t.Errorf("no profile %q", n)
		}
	}
	if _, ok := Profile("nope"); ok {
		t.Error(`Profile("nope") found`)
	}
	// The documented averages of the bursty profiles.
	for name, want := range map[string]float64{"3g-poor": 0.05, "edge-bursty": 0.10} {
		c, _ := Profile(name)
		if got := c.Burst.MeanLoss(); math.Abs(got-want) > 1e-9 {
			t.Errorf("%s: mean loss %.4f, want %.2f", name, got, want)
		}
	}
	a, _ := Profile("3g-poor")
	a.Burst.LossBad = 1
	if b, _ := Profile("3g-poor"); b.Burst.LossBad == 1 {
		t.Error("changing a profile's Burst changed the next caller's")
	}
	tab := Table()
	t.Log("\n" + tab)
	if lines := strings.Count(tab, "\n"); lines != len(Profiles())+2 {
		t.Errorf("table has %d lines, want %d", lines, len(Profiles())+2)
	}
}
