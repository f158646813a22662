package e2e_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/bench/e2e"
)

// The test binary is also the benchmark's senders: Run starts it again
// with the role in its environment.
func TestMain(m *testing.M) {
	e2e.ChildMain()
	os.Exit(m.Run())
}

// A small run of handsup and the floor: every listener hears each, and
// the counts agree with each other and with what the senders sent.
func TestSmallRunAccounting(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := e2e.Run(ctx, e2e.Config{Listeners: []int{50}, Repeats: 1, Duration: 2 * time.Second, WarmUp: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Steps) != 1 || len(res.Steps[0].Runs) != 2 {
		t.Fatalf("want one step of two runs, got %+v", res.Steps)
	}
	const inFlight = 10 * 50 // ten ticks' datagrams for the 50 listeners
	for _, r := range res.Steps[0].Runs {
		t.Logf("%s: %+v", r.Kind, r)
		switch {
		case r.Silent != 0:
			t.Errorf("%s: %d of 50 listeners heard nothing in 2 s", r.Kind, r.Silent)
		case r.Received == 0 || r.Received > r.Expected:
			t.Errorf("%s: received %d, expected %d", r.Kind, r.Received, r.Expected)
		case r.Received > r.Sent+inFlight:
			// The receivers count from after the sender's first mark, so
			// what waited in their sockets then (a client a tick or two
			// behind on a loaded machine: 25 datagrams once, under -race)
			// counts as received but not as sent in the window. Counting
			// twice would show as twice.
			t.Errorf("%s: received %d, more than the %d sent and %d in flight", r.Kind, r.Received, r.Sent, inFlight)
		case r.Stray != 0:
			t.Errorf("%s: %d datagrams to no listener", r.Kind, r.Stray)
		case r.Datagram < 13 || r.Datagram > 1500:
			t.Errorf("%s: %g bytes a datagram", r.Kind, r.Datagram)
		case r.Ticks == 0 || r.SendCalls == 0:
			t.Errorf("%s: %d ticks, %d sendmmsg calls", r.Kind, r.Ticks, r.SendCalls)
		}
		// Delivery as the report computes it, from its own counts.
		if want := 100 * float64(r.Received) / float64(r.Expected); r.DeliveredPct != want {
			t.Errorf("%s: delivered %g%%, counts say %g%%", r.Kind, r.DeliveredPct, want)
		}
	}
	hs := res.Steps[0].Runs[0]
	if hs.Kind != e2e.KindHandsup || hs.Joins == nil || hs.Joins.Count != 50 {
		t.Errorf("handsup's joins: %+v", hs.Joins)
	}
	// The codec floor: handsup's codec calls (its 3 talkers decoded, the
	// listeners' mix and each talker's mix-minus encoded), timed alone.
	st := res.Steps[0]
	switch {
	case hs.DecodesPerTick < 2 || hs.DecodesPerTick > 6 || hs.EncodesPerTick < 3 || hs.EncodesPerTick > 5:
		t.Errorf("handsup: %.2f decodes and %.2f encodes a tick; want about 3 and 4", hs.DecodesPerTick, hs.EncodesPerTick)
	case st.DecodeUS.Median <= 0 || st.EncodeUS.Median <= st.DecodeUS.Median:
		t.Errorf("codec floor: decode %.1f µs, encode %.1f µs; want both, an encode dearer", st.DecodeUS.Median, st.EncodeUS.Median)
	}
	want := 100 * (st.DecodeUS.Median*hs.DecodesPerTick + st.EncodeUS.Median*hs.EncodesPerTick) / 20000
	if got := st.CodecPct.Median; got < 0.999*want || got > 1.001*want {
		t.Errorf("codec floor %.3f%% of a core, its parts say %.3f%%", got, want)
	}
	if r := st.FloorsRatio.Median; r <= 0 || r >= st.Ratio.Median {
		t.Errorf("handsup / (codec floor + floor) %.2f, handsup / floor %.2f: want positive and below", r, st.Ratio.Median)
	}
	// Its ticks built, encoded and sent: every part took some of the
	// window.
	if hs.BuildPct <= 0 || hs.EncodePct <= 0 || hs.SendPct <= 0 || hs.BuildNsPerListener <= 0 {
		t.Errorf("handsup's tick work: build %.2f%%, encode %.2f%%, send %.2f%% of a core, build %.0f ns a listener; want each above 0",
			hs.BuildPct, hs.EncodePct, hs.SendPct, hs.BuildNsPerListener)
	}
	if hs.RTCP == 0 {
		t.Error("no sender report reached a listener in 2 s (one per stream every 5 s, spread)")
	}
	// The speakers' jitter buffers played the window's audio: a target at
	// least the 20 ms floor and at most the buffer's 400 ms (its MaxDelay), a delay.
	// What they concealed is the machine's timing, not asserted.
	if hs.SpeakerTargetMs < 20 || hs.SpeakerTargetMs > 400 || hs.SpeakerDelayMs <= 0 {
		t.Errorf("handsup's speakers: mean target %.1f ms, mean delay %.1f ms; want 20-400 ms and some", hs.SpeakerTargetMs, hs.SpeakerDelayMs)
	}
}

// A paired run measures handsup and the floor in one window, each to its
// own listeners: both deliver to all of them, the floor sends datagrams
// of handsup's size, and the ratio is of that window's two figures.
func TestPairedRunSharesTheWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := e2e.Run(ctx, e2e.Config{Listeners: []int{50}, Repeats: 1, Duration: 2 * time.Second, WarmUp: 500 * time.Millisecond, Paired: true})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Paired || len(res.Steps) != 1 || len(res.Steps[0].Runs) != 2 {
		t.Fatalf("want a paired result of one step of two runs, got paired %v, %+v", res.Paired, res.Steps)
	}
	h, f := res.Steps[0].Runs[0], res.Steps[0].Runs[1]
	if h.Kind != e2e.KindHandsup || f.Kind != e2e.KindFloor {
		t.Fatalf("runs %q and %q, want handsup then the floor", h.Kind, f.Kind)
	}
	for _, r := range []e2e.RunStats{h, f} {
		t.Logf("%s: %+v", r.Kind, r)
		if r.Silent != 0 || r.Received == 0 || r.Stray != 0 {
			t.Errorf("%s: %d of 50 listeners heard nothing, %d received, %d stray", r.Kind, r.Silent, r.Received, r.Stray)
		}
		if r.CPUPct <= 0 {
			t.Errorf("%s: CPU %g%%", r.Kind, r.CPUPct)
		}
	}
	// The floor's listeners are its own: each side heard what its sender
	// sent, no more (the speakers' streams are handsup's alone).
	if h.Received > h.Sent || f.Received > f.Sent+10*50 {
		t.Errorf("received %d of handsup's %d and %d of the floor's %d", h.Received, h.Sent, f.Received, f.Sent)
	}
	if h.WindowS != f.WindowS {
		t.Errorf("windows of %g and %g s: want the one window", h.WindowS, f.WindowS)
	}
	if d := f.Datagram / h.Datagram; d < 0.9 || d > 1.1 {
		t.Errorf("the floor sent %.1f-byte datagrams, handsup %.1f: want handsup's size", f.Datagram, h.Datagram)
	}
	if want := h.CPUPct / f.CPUPct; res.Steps[0].Ratio.Median != want {
		t.Errorf("ratio %g, the window's CPU says %g", res.Steps[0].Ratio.Median, want)
	}
}
