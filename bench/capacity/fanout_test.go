package capacity

import (
	"context"
	"encoding/json"
	"github.com/handsup-audio/handsup/internal/webrtctest"
	"testing"
	"time"
)

// The transport comparison measures the engine alone, plain RTP and
// WebRTC in one run, and every listener of every transport receives every
// packet sent to it. Speed is not judged here, only that the figures are
// there and come from real work.
func TestRunTransports(t *testing.T) {
	cfg := Config{Rooms: 1, Speakers: 2, Active: 1, Listeners: 0, TransportListeners: 20,
		Duration: 100 * time.Millisecond, Seed: 6}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := run(ctx, cfg, testTuning)
	if err != nil {
		t.Fatal(err)
	}
	f := res.Transports
	if f == nil {
		t.Fatal("no transport figures with TransportListeners set")
	}
	if f.Listeners != cfg.TransportListeners || f.Repeats != testTuning.repeats || f.TicksPerRepeat != testTuning.fanTicks {
		t.Errorf("measured %d listeners over %d × %d ticks, want %d over %d × %d",
			f.Listeners, f.Repeats, f.TicksPerRepeat, cfg.TransportListeners, testTuning.repeats, testTuning.fanTicks)
	}
	want := []string{"engine", "rtp", "webrtc"}
	if len(f.Transports) != len(want) {
		t.Fatalf("%d transports, want %v", len(f.Transports), want)
	}
	ticks := uint64(testTuning.repeats * (testTuning.fanTicks + testTuning.fanAllocTicks))
	for i, c := range f.Transports {
		t.Logf("%+v", c)
		if c.Transport != want[i] {
			t.Errorf("transport %d is %q, want %q", i, c.Transport, want[i])
		}
		// Every measured tick sends each listener a packet (the room talks).
		if c.PacketsSent < ticks*uint64(cfg.TransportListeners) || c.PacketsReceived != c.PacketsSent ||
			c.DeliveredPct != 100 || c.ListenersShort != 0 {
			t.Errorf("%s: sent %d, received %d (%.2f%%, %d listeners short), want at least %d, all received",
				c.Transport, c.PacketsSent, c.PacketsReceived, c.DeliveredPct, c.ListenersShort, ticks*uint64(cfg.TransportListeners))
		}
		// The WebRTC clients' pion authenticated a sample of what came:
		// the stream is valid SRTP, not just datagrams.
		if c.Transport == "webrtc" && (c.PacketsAuthenticated == nil ||
			*c.PacketsAuthenticated < c.PacketsSent/webrtctest.SkimEvery/2) {
			t.Errorf("webrtc: pion authenticated %v packets of %d sent, want about 1 in %d",
				c.PacketsAuthenticated, c.PacketsSent, webrtctest.SkimEvery)
		}
		if c.TickCPUusWith <= 0 || c.TickCPUusWithout <= 0 {
			t.Errorf("%s: ticks took %.1f / %.1f µs, want positive", c.Transport, c.TickCPUusWith, c.TickCPUusWithout)
		}
		if c.Resolved != (c.NsPerListenerTick != nil) {
			t.Errorf("%s: resolved %v with ns_per_listener_tick %v", c.Transport, c.Resolved, c.NsPerListenerTick)
		}
		if c.Transport == "engine" {
			if c.SendNsPerPacket != nil || c.FlushCPUusWith != 0 {
				t.Errorf("engine: flushes took %.1f µs (%v per packet), want none", c.FlushCPUusWith, c.SendNsPerPacket)
			}
			continue
		}
		// The flush is timed for the transports that send; how its CPU
		// compares between the rooms is a measurement, left to Resolved
		// (one preempted or faulting flush can outweigh 20 datagrams).
		if c.SendNsPerPacket == nil || c.FlushCPUusWith <= 0 || c.FlushCPUusWithout <= 0 {
			t.Errorf("%s: flushes %.1f / %.1f µs, send per packet %v: want them timed",
				c.Transport, c.FlushCPUusWith, c.FlushCPUusWithout, c.SendNsPerPacket)
		}
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Transports struct {
			Transports []map[string]any `json:"transports"`
		} `json:"transports"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	for _, c := range out.Transports.Transports {
		for _, k := range []string{"transport", "ns_per_listener_tick", "send_ns_per_packet", "total_ns_per_listener_tick",
			"allocs_per_listener_tick", "delivered_pct", "resolved"} {
			if _, ok := c[k]; !ok {
				t.Errorf("JSON transport lacks %q: %v", k, c)
			}
		}
	}
}
