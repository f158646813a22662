package capacity

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/handsup-audio/handsup/bench/internal/sim"
	"github.com/handsup-audio/handsup/engine"
)

// FanOut is what one listener costs per tick over each transport, measured
// in one run: the engine alone (counting sinks, as ListenerCost), plain
// RTP through a session/rtpudp transport to UDP sockets on loopback, and
// WebRTC through a session/webrtc transport to pion clients on loopback,
// DTLS-SRTP included.
//
// Each transport has twin rooms as ListenerCost does (Listeners listeners
// and one, the same codec work), each on its own transport instance, with
// one speaker (Config's first, talking unless Active is 0): the less codec
// work a tick does, the less noise it adds to the listeners' cost. Every
// 20 ms of real time each of the six rooms ticks once, on one locked
// thread, in a balanced order (tickPaired); each tick is timed in that
// thread's CPU time, and so is, apart, its AfterTick flush (the
// transport's sendmmsg of what the tick queued). The transports' batches
// hold a whole tick, so nothing is sent before the flush (up to 512
// WebRTC listeners: session/webrtc's batch size).
type FanOut struct {
	Listeners      int `json:"listeners"` // per measured room; each twin has one
	Repeats        int `json:"repeats"`
	TicksPerRepeat int `json:"ticks_per_repeat"`
	// AllocTicksPerRepeat is how many ticks of each repeat of the
	// allocation count ran (after the timed repeats).
	AllocTicksPerRepeat int             `json:"alloc_ticks_per_repeat"`
	Transports          []TransportCost `json:"transports"` // engine, rtp, webrtc
}

// TransportCost is one transport's figures in FanOut. Per-listener
// figures are (room with Listeners − its twin) / (Listeners − 1), per tick,
// one value per repeat: median, least and greatest repeat.
type TransportCost struct {
	// Transport is "engine" (counting sinks, no network), "rtp"
	// (session/rtpudp) or "webrtc" (session/webrtc, SRTP).
	Transport string `json:"transport"`
	// NsPerListenerTick is the tick's CPU less its flush, per listener:
	// the engine's work and the transport's user-space work (RTP header,
	// SRTP, queueing in the batch). The median of User; null when User is
	// not resolved.
	NsPerListenerTick *float64 `json:"ns_per_listener_tick"`
	User              Spread   `json:"user_ns_per_listener_tick"`
	// Send is the flush's CPU per listener per tick: the kernel's
	// sendmmsg (on loopback it includes delivery to the receiving socket).
	Send Spread `json:"send_ns_per_listener_tick"`
	// SendNsPerPacket is the flush's CPU per datagram the flush sent; null
	// for the engine, which sends none.
	SendNsPerPacket *Spread `json:"send_ns_per_packet"`
	// Total is the whole tick's CPU per listener: User and Send together.
	Total Spread `json:"total_ns_per_listener_tick"`
	// Allocs is Go heap allocations per listener per tick
	// (runtime.MemStats.Mallocs, process-wide) from each tick's start to
	// its flush, counted on separate ticks after the timed ones; before
	// each, the clients are let take in everything sent so far, so the
	// process's other goroutines are mostly idle during the count.
	Allocs Spread `json:"allocs_per_listener_tick"`
	// Resolved is true when User and Total are resolved (every repeat
	// positive, max − min ≤ median); Note says why not.
	Resolved bool `json:"resolved"`
	// TickCPUusWith and TickCPUusWithout are the mean thread CPU time of
	// a tick of the room with Listeners and of its twin, flush included;
	// FlushCPUusWith and FlushCPUusWithout are the flush's part.
	TickCPUusWith     float64 `json:"tick_cpu_us_with"`
	TickCPUusWithout  float64 `json:"tick_cpu_us_without"`
	FlushCPUusWith    float64 `json:"flush_cpu_us_with"`
	FlushCPUusWithout float64 `json:"flush_cpu_us_without"`
	// PacketsSent is what the room with Listeners sent its listeners from
	// the end of the warm-up to the end of the run; PacketsReceived is
	// what their sockets received. The WebRTC clients' sockets hand pion
	// one packet in webrtctest.SkimEvery to authenticate and decrypt, so
	// that hundreds of clients on this machine disturb the server little:
	// PacketsAuthenticated counts those, over the whole run.
	PacketsSent          uint64  `json:"packets_sent"`
	PacketsReceived      uint64  `json:"packets_received"`
	PacketsAuthenticated *uint64 `json:"packets_authenticated,omitempty"`
	DeliveredPct         float64 `json:"delivered_pct"`
	// ListenersShort counts listeners that received fewer packets than
	// were sent to each.
	ListenersShort int    `json:"listeners_short"`
	Note           string `json:"note,omitempty"`
}

// Spread is a figure's median, least and greatest repeat.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// fanRoom is one twin's listeners over a transport: how they join and
// flush (pairedRoom's), what each has received so far, and how to free
// them.
type fanRoom struct {
	listeners
	received func(into []uint64) // per listener, so far
	// authenticated is what the clients decrypted and authenticated so
	// far (WebRTC); nil for the others.
	authenticated func() uint64
	close         func()
}

// fanTransport makes a transport's room of n listeners.
type fanTransport struct {
	name string
	make func(ctx context.Context, n int) (*fanRoom, error)
}

var fanTransports = []fanTransport{
	{"engine", countRoom},
	{"rtp", rtpRoom},
	{"webrtc", webrtcRoom},
}

// fanOut measures FanOut with cfg's speakers and TransportListeners
// listeners; nil when TransportListeners is 0.
func fanOut(ctx context.Context, cfg Config, streams []sim.Stream, tun tuning) (*FanOut, error) {
	n := cfg.TransportListeners
	if n == 0 {
		return nil, nil
	}
	res := &FanOut{Listeners: n, Repeats: tun.repeats, TicksPerRepeat: tun.fanTicks, AllocTicksPerRepeat: tun.fanAllocTicks}
	ticks := tun.repeats * tun.fanTicks
	type twins struct {
		with, twin   *pairedRoom
		fWith, fTwin *fanRoom
	}
	all := make([]twins, len(fanTransports))
	// One speaker, talking unless no speaker of cfg does: the listeners'
	// cost does not depend on the speakers, and the less codec work the
	// ticks do, the less noise it adds.
	one := cfg
	one.Speakers, one.Active = min(1, cfg.Speakers), min(1, cfg.Active)
	var rooms []*pairedRoom
	defer func() {
		for _, t := range all {
			for _, p := range []*pairedRoom{t.with, t.twin} {
				if p != nil {
					p.close()
				}
			}
			for _, f := range []*fanRoom{t.fWith, t.fTwin} {
				if f != nil {
					f.close()
				}
			}
		}
	}()
	for i, ft := range fanTransports {
		t := &all[i]
		var err error
		if t.fWith, err = ft.make(ctx, n); err != nil {
			return nil, fmt.Errorf("capacity: %s listeners: %w", ft.name, err)
		}
		if t.fTwin, err = ft.make(ctx, 1); err != nil {
			return nil, fmt.Errorf("capacity: %s listeners: %w", ft.name, err)
		}
		if t.with, err = newPairedRoom(one, streams, n, ticks, t.fWith.listeners); err != nil {
			return nil, err
		}
		if t.twin, err = newPairedRoom(one, streams, 1, ticks, t.fTwin.listeners); err != nil {
			return nil, err
		}
		rooms = append(rooms, t.with, t.twin)
	}
	runtime.GC() // building made garbage

	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := tickPaired(ctx, rooms, 0, tun.fanWarmup, untimed); err != nil {
		return nil, err
	}
	// Let what the warm-up sent arrive, then count from here: a client
	// whose SRTP came up a little after the server's dropped the first
	// packets.
	time.Sleep(200 * time.Millisecond)
	before := make([][2]engine.Stats, len(all))
	sent0 := make([]uint64, len(all))
	recv0 := make([][]uint64, len(all))
	for i, t := range all {
		before[i] = [2]engine.Stats{t.with.s.eng.Stats(), t.twin.s.eng.Stats()}
		sent0[i] = t.fWith.sent()
		recv0[i] = make([]uint64, n)
		t.fWith.received(recv0[i])
	}
	if err := tickPaired(ctx, rooms, tun.fanWarmup, ticks, timed); err != nil {
		return nil, err
	}

	// Allocations, on ticks of their own: before each room's tick, wait
	// (20 ms at most) for every client to take in what was sent so far.
	allocs := make([][2][]uint64, len(all))
	settled := func(i int) bool {
		f := all[i].fWith
		got := make([]uint64, n)
		f.received(got)
		var sum, sum0 uint64
		for j := range got {
			sum += got[j]
			sum0 += recv0[i][j]
		}
		return f.sent()-sent0[i] <= sum-sum0
	}
	allSettled := func() bool {
		for i := range all {
			if !settled(i) {
				return false
			}
		}
		return true
	}
	index := map[*pairedRoom][2]int{}
	for i, t := range all {
		index[t.with], index[t.twin] = [2]int{i, 0}, [2]int{i, 1}
	}
	runtime.GC()
	if err := tickPaired(ctx, rooms, tun.fanWarmup+ticks, tun.repeats*tun.fanAllocTicks, func(p *pairedRoom, k int) {
		at := index[p]
		for deadline := time.Now().Add(20 * time.Millisecond); !allSettled() && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
		allocs[at[0]][at[1]] = append(allocs[at[0]][at[1]], p.allocStep(k))
	}); err != nil {
		return nil, err
	}

	// Everything sent arrives on loopback; 5 s bound a failure.
	for deadline := time.Now().Add(5 * time.Second); !allSettled() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	for i, t := range all {
		c := TransportCost{Transport: fanTransports[i].name}
		c.summarize(t.with, t.twin, tun.repeats, tun.fanTicks, n)
		c.Allocs = allocSpread(allocs[i][0], allocs[i][1], tun.repeats, tun.fanAllocTicks, n)
		if note := codecMismatch(t.with, t.twin, before[i]); note != "" {
			c.Note, c.Resolved, c.NsPerListenerTick = note, false, nil
		}
		got := make([]uint64, n)
		t.fWith.received(got)
		c.PacketsSent = t.fWith.sent() - sent0[i]
		each := c.PacketsSent / uint64(n)
		for j := range got {
			d := got[j] - recv0[i][j]
			c.PacketsReceived += d
			if d < each {
				c.ListenersShort++
			}
		}
		if c.PacketsSent > 0 {
			c.DeliveredPct = sim.Round(100*float64(c.PacketsReceived)/float64(c.PacketsSent), 2)
		}
		if a := t.fWith.authenticated; a != nil {
			v := a()
			c.PacketsAuthenticated = &v
		}
		res.Transports = append(res.Transports, c)
	}
	return res, nil
}

// summarize fills in the timed figures from the twin rooms' ticks.
func (c *TransportCost) summarize(with, twin *pairedRoom, repeats, per, n int) {
	if len(with.cpu) < repeats*per || len(twin.cpu) < repeats*per || n < 2 {
		c.Note = "not resolved: it takes at least 2 listeners and one repeat"
		return
	}
	user := func(p *pairedRoom) []time.Duration {
		u := make([]time.Duration, len(p.cpu))
		for k := range u {
			u[k] = p.cpu[k] - p.flushCPU[k]
		}
		return u
	}
	mean := func(d []time.Duration) float64 {
		var s time.Duration
		for _, x := range d {
			s += x
		}
		return sim.Round(float64(s.Nanoseconds())/float64(max(1, len(d)))/1e3, 1)
	}
	c.TickCPUusWith, c.TickCPUusWithout = mean(with.cpu), mean(twin.cpu)
	c.FlushCPUusWith, c.FlushCPUusWithout = mean(with.flushCPU), mean(twin.flushCPU)

	var ok bool
	c.User.Min, c.User.Median, c.User.Max, ok = spread(perRepeat(user(with), user(twin), repeats, per, n-1))
	var totalOK bool
	c.Total.Min, c.Total.Median, c.Total.Max, totalOK = spread(perRepeat(with.cpu, twin.cpu, repeats, per, n-1))
	c.Send.Min, c.Send.Median, c.Send.Max, _ = spread(perRepeat(with.flushCPU, twin.flushCPU, repeats, per, n-1))
	if with.flush != nil {
		perPacket := make([]float64, repeats)
		for r := range perPacket {
			var d time.Duration
			var pkts uint64
			for k := r * per; k < (r+1)*per; k++ {
				d += with.flushCPU[k] - twin.flushCPU[k]
				pkts += with.flushed[k] - twin.flushed[k]
			}
			perPacket[r] = float64(d.Nanoseconds()) / float64(max(1, pkts))
		}
		var s Spread
		s.Min, s.Median, s.Max, _ = spread(perPacket)
		c.SendNsPerPacket = &s
	}
	c.Resolved = ok && totalOK
	if !c.Resolved {
		c.Note = fmt.Sprintf("not resolved: the %d listeners' CPU is within the ticks' noise (the repeats disagree by more than their median)", n)
		return
	}
	ns := c.User.Median
	c.NsPerListenerTick = &ns
}

// allocSpread is the allocations per listener per tick, per repeat of
// per ticks: (with − twin) / (n − 1).
func allocSpread(with, twin []uint64, repeats, per, n int) Spread {
	v := make([]float64, repeats)
	for r := range v {
		var d float64
		for k := r * per; k < (r+1)*per && k < len(with) && k < len(twin); k++ {
			d += float64(with[k]) - float64(twin[k])
		}
		v[r] = d / float64(per) / float64(max(1, n-1))
	}
	// spread rounds to 0.1; allocations per listener are finer: 0.0001.
	for i := range v {
		v[i] *= 1000
	}
	lo, med, hi, _ := spread(v)
	return Spread{Median: med / 1000, Min: lo / 1000, Max: hi / 1000}
}
