package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/handsup-audio/handsup/engine"
)

// Run measures every step of cfg: for each listener count, Repeats rounds
// of handsup and the floor back to back (the order alternating), then the
// codec floor (unless NoFloor), each in a process of its own, the client
// (speakers and receivers) in this one.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	res := Result{
		GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(), Load: loadAverage(),
		DurationS: cfg.Duration.Seconds(), Repeats: cfg.Repeats, Speakers: cfg.Speakers,
		Talking: cfg.Talking, Rooms: cfg.Rooms,
		JoinRate: cfg.JoinRate, Paired: cfg.Paired, ServerProc: cfg.ServerProcs, Phases: cfg.Phases, ShedComplexity: cfg.ShedComplexity,
		Note: "senders and client share this machine; /proc/net/snmp counts every process's UDP",
	}
	rx, err := newReceivers(cfg.Receivers, slicesMax(cfg.Listeners)*cfg.Rooms)
	if err != nil {
		return res, err
	}
	defer rx.close()
	res.ClientRcv = rx.rcvbuf()
	var rxPair *receivers
	if cfg.Paired { // the floor's listeners, on ports of their own
		if rxPair, err = newReceivers(cfg.Receivers, slicesMax(cfg.Listeners)*cfg.Rooms); err != nil {
			return res, err
		}
		defer rxPair.close()
	}
	sp, err := newSpeakers(cfg.Rooms, cfg.Speakers, cfg.Talking)
	if err != nil {
		return res, err
	}
	defer sp.close()
	probe := startStallProbe()
	defer probe.close()
	b := &bench{cfg: cfg, rx: rx, rxPair: rxPair, sp: sp, probe: probe}
	for _, n := range cfg.Listeners {
		st := Step{Listeners: n, Summary: map[string]Sum{}}
		datagram := 0
		var ratios, packetRatios, floorRatios, decUS, encUS, codecPct []float64
		for rep := range cfg.Repeats {
			kinds := []string{KindHandsup, KindFloor}
			switch {
			case cfg.Paired:
				kinds = nil // both at once: runPaired
			case cfg.NoFloor:
				kinds = kinds[:1]
			case rep%2 == 1:
				kinds = []string{KindFloor, KindHandsup}
			}
			if cfg.FloorReader && !cfg.NoFloor {
				kinds = append(kinds, KindFloorReader)
			}
			cpu, perPkt := map[string]float64{}, map[string]float64{}
			var h RunStats // handsup's
			record := func(r RunStats) {
				if r.Kind == KindHandsup {
					h = r
					if r.Sent > 0 {
						datagram = int(math.Round(r.Datagram))
					}
				}
				cpu[r.Kind], perPkt[r.Kind] = r.CPUPct, r.CPUusPerPkt
				st.Runs = append(st.Runs, r)
				cfg.Progress(progressLine(r))
			}
			profile := ""
			if rep == 0 && cfg.Profile != "" {
				profile = cfg.Profile
				if len(cfg.Listeners) > 1 {
					profile = fmt.Sprintf("%s.%d", cfg.Profile, n)
				}
			}
			if cfg.Paired {
				runs, err := b.runPaired(ctx, n, rep, datagram, profile)
				if err != nil {
					return res, fmt.Errorf("handsup and floor at once, %d listeners, repeat %d: %w", n, rep+1, err)
				}
				for _, r := range runs {
					record(r)
				}
			}
			for _, kind := range kinds {
				if kind != KindHandsup && datagram == 0 {
					datagram = 100 // no handsup run yet: about a 32 kb/s Opus packet and its header
				}
				p := ""
				if kind == KindHandsup {
					p = profile
				}
				r, err := b.run(ctx, kind, n, rep, datagram, p)
				if err != nil {
					return res, fmt.Errorf("%s, %d listeners, repeat %d: %w", kind, n, rep+1, err)
				}
				record(r)
			}
			if f := cpu[KindFloor]; f > 0 {
				ratios = append(ratios, cpu[KindHandsup]/f)
				dec, enc, err := b.codecCost(ctx)
				if err != nil {
					return res, fmt.Errorf("codec floor, %d listeners, repeat %d: %w", n, rep+1, err)
				}
				codec := 100 * (dec*h.DecodesPerTick + enc*h.EncodesPerTick) / float64(engine.TickInterval.Microseconds())
				decUS, encUS, codecPct = append(decUS, dec), append(encUS, enc), append(codecPct, codec)
				floorRatios = append(floorRatios, cpu[KindHandsup]/(codec+f))
				cfg.Progress(fmt.Sprintf("codec floor  N=%-6d repeat %d: decode %.1f µs, encode %.1f µs: %.1f%% of a core for handsup's %.2f decodes and %.2f encodes a tick; handsup / (codec floor + floor) %.2f",
					n, rep+1, dec, enc, codec, h.DecodesPerTick, h.EncodesPerTick, floorRatios[len(floorRatios)-1]))
			}
			if f := perPkt[KindFloor]; f > 0 {
				packetRatios = append(packetRatios, perPkt[KindHandsup]/f)
			}
		}
		st.Ratio, st.PacketRatio = spreadOf(ratios), spreadOf(packetRatios)
		st.DecodeUS, st.EncodeUS, st.CodecPct, st.FloorsRatio = spreadOf(decUS), spreadOf(encUS), spreadOf(codecPct), spreadOf(floorRatios)
		for _, kind := range []string{KindHandsup, KindFloor, KindFloorReader} {
			if s, ok := summarize(st.Runs, kind); ok {
				st.Summary[kind] = s
			}
		}
		if allPass(st.Runs, KindHandsup) {
			res.LargestN = max(res.LargestN, n)
		}
		res.Steps = append(res.Steps, st)
	}
	res.LoadAfter = loadAverage()
	return res, nil
}

func slicesMax(v []int) int {
	m := 0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func allPass(runs []RunStats, kind string) bool {
	any := false
	for _, r := range runs {
		if r.Kind == kind {
			if !r.Passes() {
				return false
			}
			any = true
		}
	}
	return any
}

func progressLine(r RunStats) string {
	line := fmt.Sprintf("%-12s N=%-6d repeat %d: CPU %.1f%% (%.2f µs/packet), %.2f pkt/listener/s, delivered %.3f%%, under 99.9%%: %.2f%% of listeners, ticks %d (longest %.1f ms, latest %.1f ms), overruns %d, skipped %d, decodes/encodes a tick %.2f/%.2f, client CPU %.1f%%, machine stalls %d (%.1f ms, longest %.1f), GC cycles %d",
		r.Kind, r.Listeners, r.Repeat+1, r.CPUPct, r.CPUusPerPkt, r.PerListenerPerS, r.DeliveredPct, r.Under999Pct, r.Ticks, r.TickMax, r.LateMax, r.Overruns, r.Skipped, r.DecodesPerTick, r.EncodesPerTick, r.ClientCPUPct, r.Stalls, r.StalledMs, r.StallMaxMs, r.GCCycles)
	if r.Kind == KindHandsup {
		line += fmt.Sprintf(", speakers' buffers: %d concealment events, target %.1f ms, delay %.1f ms, shedding load %d ticks (%d times), tick work in %% of a core: build %.1f (%.0f ns a listener), encode %.1f, send %.1f (split in %d room ticks)",
			r.SpeakerConcealments, r.SpeakerTargetMs, r.SpeakerDelayMs, r.ShedTicks, r.ShedSpells, r.BuildPct, r.BuildNsPerListener, r.EncodePct, r.SendPct, r.SplitSends)
	}
	return line
}

func summarize(runs []RunStats, kind string) (Sum, bool) {
	var sel []RunStats
	for _, r := range runs {
		if r.Kind == kind {
			sel = append(sel, r)
		}
	}
	if len(sel) == 0 {
		return Sum{}, false
	}
	of := func(f func(RunStats) float64) Spread {
		v := make([]float64, len(sel))
		for i, r := range sel {
			v[i] = f(r)
		}
		return spreadOf(v)
	}
	return Sum{
		CPUPct:          of(func(r RunStats) float64 { return r.CPUPct }),
		CPUusPerPkt:     of(func(r RunStats) float64 { return r.CPUusPerPkt }),
		ClientCPUPct:    of(func(r RunStats) float64 { return r.ClientCPUPct }),
		PerListenerPerS: of(func(r RunStats) float64 { return r.PerListenerPerS }),
		DeliveredPct:    of(func(r RunStats) float64 { return r.DeliveredPct }),
		Under98Pct:      of(func(r RunStats) float64 { return r.Under98Pct }),
		Under999Pct:     of(func(r RunStats) float64 { return r.Under999Pct }),
		InterArrivalP99: of(func(r RunStats) float64 { return r.InterArrivalP99 }),
		LateP99:         of(func(r RunStats) float64 { return r.LateP99 }),
		TickP99:         of(func(r RunStats) float64 { return r.TickP99 }),
		Overruns:        of(func(r RunStats) float64 { return float64(r.Overruns) }),
		Skipped:         of(func(r RunStats) float64 { return float64(r.Skipped) }),
		ShedTicks:       of(func(r RunStats) float64 { return float64(r.ShedTicks) }),
	}, true
}

// bench is a Run's client side.
type bench struct {
	cfg    Config
	rx     *receivers // the listeners'
	rxPair *receivers // the floor's listeners' in a paired run (Config.Paired)
	sp     *speakers
	probe  *stallProbe
}

// child is a running sender process.
type child struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	reports chan report
	stderr  *bytes.Buffer
	wait    chan error
}

// start starts a sender process with its config.
func (b *bench) start(cc childConfig) (*child, error) {
	cmd, err := b.cfg.Command()
	if err != nil {
		return nil, err
	}
	cmd.Env = append(os.Environ(), childEnv+"="+cc.Role)
	c := &child{cmd: cmd, reports: make(chan report, 4), stderr: &bytes.Buffer{}, wait: make(chan error, 1)}
	cmd.Stderr = c.stderr
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		dec := json.NewDecoder(bufio.NewReader(out))
		for {
			var r report
			if err := dec.Decode(&r); err != nil {
				close(c.reports)
				c.wait <- cmd.Wait()
				return
			}
			c.reports <- r
		}
	}()
	line, _ := json.Marshal(cc)
	if _, err := c.stdin.Write(append(line, '\n')); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// await reads the child's next report, which must be event.
func (c *child) await(ctx context.Context, event string, timeout time.Duration) (report, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r, ok := <-c.reports:
		switch {
		case !ok:
			return r, fmt.Errorf("sender exited: %s", tail(c.stderr))
		case r.Event == "error":
			return r, errors.New(r.Err)
		case r.Event != event:
			return r, fmt.Errorf("sender said %q, want %q", r.Event, event)
		}
		return r, nil
	case <-t.C:
		return report{}, fmt.Errorf("no %q from the sender in %v", event, timeout)
	case <-ctx.Done():
		return report{}, ctx.Err()
	}
}

func (c *child) mark(ctx context.Context) (report, error) {
	if _, err := io.WriteString(c.stdin, "mark\n"); err != nil {
		return report{}, err
	}
	return c.await(ctx, "mark", 30*time.Second)
}

// stop closes the child's stdin, which ends it, and waits for it; one
// that has not ended in 30 s is killed.
func (c *child) stop() {
	_ = c.stdin.Close()
	t := time.AfterFunc(30*time.Second, func() { _ = c.cmd.Process.Kill() })
	defer t.Stop()
	for range c.reports {
	}
	<-c.wait
}

func tail(b *bytes.Buffer) string {
	s := strings.TrimSpace(b.String())
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return s
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// codecCost runs the codec floor's child: libopus's CPU µs per decode and
// per encode on the rooms' calls, timed alone (bench/capacity.CodecCost).
func (b *bench) codecCost(ctx context.Context) (dec, enc float64, err error) {
	c, err := b.start(childConfig{
		Role: roleCodec, Rooms: b.cfg.Rooms, PerRoom: b.cfg.Speakers, Talking: b.cfg.Talking,
		Workers: b.cfg.Workers, Procs: b.cfg.ServerProcs,
	})
	if err != nil {
		return 0, 0, err
	}
	defer c.stop()
	r, err := c.await(ctx, "codec", 5*time.Minute)
	return r.DecodeUS, r.EncodeUS, err
}

// run measures one sender with n listeners, alone.
func (b *bench) run(ctx context.Context, kind string, n, rep, datagram int, profile string) (RunStats, error) {
	l, err := b.launch(ctx, kind, n, rep, datagram, profile, b.rx)
	if err != nil {
		return RunStats{}, err
	}
	defer b.stopSender(l)
	if err := sleep(ctx, b.cfg.WarmUp); err != nil {
		return RunStats{}, err
	}
	rs, err := b.measure(ctx, l)
	if err != nil {
		return RunStats{}, err
	}
	return rs[0], nil
}

// runPaired measures handsup and the floor with n listeners each, at
// once (Config.Paired). Handsup starts first; the floor sends datagrams
// of handsup's mean size, from an earlier repeat or, in the first, as
// the client counts them for a second once handsup has warmed up.
func (b *bench) runPaired(ctx context.Context, n, rep, datagram int, profile string) ([]RunStats, error) {
	h, err := b.launch(ctx, KindHandsup, n, rep, 0, profile, b.rx)
	if err != nil {
		return nil, err
	}
	defer b.stopSender(h)
	if err := sleep(ctx, b.cfg.WarmUp); err != nil {
		return nil, err
	}
	if datagram == 0 {
		b.rx.start()
		if err := sleep(ctx, time.Second); err != nil {
			return nil, err
		}
		w := b.rx.end(n * b.cfg.Rooms)
		datagram = 100 // as Run's first floor: about a 32 kb/s Opus packet and its header
		if received := countReceived(w.perListener); received > 0 && w.bytes > 0 {
			datagram = int(math.Round(float64(w.bytes) / float64(received)))
		}
	}
	f, err := b.launch(ctx, KindFloor, n, rep, datagram, "", b.rxPair)
	if err != nil {
		return nil, err
	}
	defer b.stopSender(f)
	if err := sleep(ctx, b.cfg.WarmUp); err != nil {
		return nil, err
	}
	return b.measure(ctx, h, f)
}

func countReceived(ls []listenerState) uint64 {
	var n uint64
	for _, l := range ls {
		n += uint64(l.count)
	}
	return n
}

// launched is a sender started, its listeners joined.
type launched struct {
	kind   string
	n, rep int
	c      *child
	rx     *receivers // its listeners'
	joined report
}

// launch starts a sender with n listeners (per room) on rx's ports and
// waits until they have joined.
func (b *bench) launch(ctx context.Context, kind string, n, rep, datagram int, profile string, rx *receivers) (*launched, error) {
	all := n * b.cfg.Rooms
	cc := childConfig{Listeners: n, Rooms: b.cfg.Rooms, Ports: rx.ports, Procs: b.cfg.ServerProcs, Datagram: datagram}
	switch kind {
	case KindHandsup:
		cc.Role, cc.Speakers, cc.Workers, cc.JoinRate, cc.Profile = roleServer, b.sp.addrs(), b.cfg.Workers, b.cfg.JoinRate, profile
		cc.SendSplit = b.cfg.SendSplit
		cc.Phases, cc.Shed = b.cfg.Phases, b.cfg.ShedComplexity
	case KindFloor, KindFloorReader:
		cc.Role, cc.Reader, cc.Listeners = roleFloor, kind == KindFloorReader, all
		cc.Fragment = b.cfg.FloorFragmentable
	}
	c, err := b.start(cc)
	if err != nil {
		return nil, err
	}
	l := &launched{kind: kind, n: n, rep: rep, c: c, rx: rx}
	ready, err := c.await(ctx, "ready", time.Minute)
	if err != nil {
		b.stopSender(l)
		return nil, err
	}
	if ready.RTP != "" {
		a, err := netip.ParseAddrPort(ready.RTP)
		if err != nil {
			b.stopSender(l)
			return nil, err
		}
		b.sp.sendTo(a)
	}
	joinTimeout := 5 * time.Minute
	if b.cfg.JoinRate > 0 {
		joinTimeout += time.Duration(float64(all) / b.cfg.JoinRate * float64(time.Second))
	}
	if l.joined, err = c.await(ctx, "joined", joinTimeout); err != nil {
		b.stopSender(l)
		return nil, err
	}
	return l, nil
}

// stopSender ends l's child; the speakers stop sending to a server.
func (b *bench) stopSender(l *launched) {
	if l.kind == KindHandsup {
		b.sp.sendTo(netip.AddrPort{})
	}
	l.c.stop()
}

// measure counts one window of the senders, all at once.
func (b *bench) measure(ctx context.Context, ls ...*launched) ([]RunStats, error) {
	m0, t0 := make([]report, len(ls)), make([]time.Time, len(ls))
	u0 := readUDPCounters()
	for i, l := range ls {
		t0[i] = time.Now()
		var err error
		if m0[i], err = l.c.mark(ctx); err != nil {
			return nil, err
		}
	}
	for _, l := range ls {
		l.rx.start()
	}
	w0, c0 := time.Now(), processCPU()
	if err := sleep(ctx, b.cfg.Duration); err != nil {
		return nil, err
	}
	ws := make([]window, len(ls))
	for i, l := range ls {
		ws[i] = l.rx.end(l.n * b.cfg.Rooms)
	}
	w1, c1 := time.Now(), processCPU()
	m1, t1 := make([]report, len(ls)), make([]time.Time, len(ls))
	for i, l := range ls {
		t1[i] = time.Now()
		var err error
		if m1[i], err = l.c.mark(ctx); err != nil {
			return nil, err
		}
	}
	u := readUDPCounters().since(u0)
	stalls, stalled, longest := b.probe.between(w0, w1)
	out := make([]RunStats, len(ls))
	for i, l := range ls {
		r := b.stats(l, m0[i], m1[i], t1[i].Sub(t0[i]), ws[i], u)
		r.WindowS = w1.Sub(w0).Seconds()
		r.ClientCPUPct = 100 * float64(c1-c0) / float64(w1.Sub(w0))
		r.Stalls, r.StalledMs, r.StallMaxMs = stalls, ms(stalled), ms(longest)
		r.account(ws[i].perListener, r.Skipped, b.cfg.Duration)
		if ws[i].bytes > 0 && r.Received > 0 && r.Datagram == 0 {
			r.Datagram = float64(ws[i].bytes) / float64(r.Received)
		}
		out[i] = r
	}
	return out, nil
}

// stats is what l's marks m0 and m1, taken span apart, and its listeners'
// window w say; u is the machine's UDP counters over the window.
func (b *bench) stats(l *launched, m0, m1 report, span time.Duration, w window, u udpCounters) RunStats {
	kind, n := l.kind, l.n
	r := RunStats{
		Kind: kind, Listeners: n, Rooms: b.cfg.Rooms, Repeat: l.rep,
		CPUPct: 100 * float64(m1.CPU-m0.CPU) / float64(span),
		Sent:   m1.Sent - m0.Sent, RTCP: w.rtcp, Stray: w.stray,
		InterArrivalP99: ms(w.interArrival.quantile(0.99)), InterArrivalMax: ms(w.interArrival.max),
		TickP99: m1.TickP99, TickMax: m1.TickMax, LateP99: m1.LateP99, LateMax: m1.LateMax,
		Ticks: m1.Ticks - m0.Ticks, Overruns: m1.Overruns - m0.Overruns, Skipped: m1.Skipped - m0.Skipped,
		SendErrors: m1.SendErrors - m0.SendErrors, SendCalls: m1.Calls - m0.Calls,
		RxqOverflow: w.overflow, RcvbufErrors: u.RcvbufErrors, SndbufErrors: u.SndbufErrors, InErrors: u.InErrors,
		SndBuf: m1.SndBuf, RcvBuf: m1.RcvBuf,
		GCCycles: m1.GCCycles - m0.GCCycles,
	}
	if kind == KindHandsup {
		r.Joins = l.joined.Joins
	}
	if kind == KindHandsup && r.Ticks > 0 {
		r.DecodesPerTick = float64(m1.Decodes-m0.Decodes) / float64(r.Ticks)
		r.EncodesPerTick = float64(m1.Encodes-m0.Encodes) / float64(r.Ticks)
		r.SpeakerConcealments = m1.Concealments - m0.Concealments
		r.BuildPct = 100 * float64(m1.BuildNS-m0.BuildNS) / float64(span)
		r.EncodePct = 100 * float64(m1.EncodeNS-m0.EncodeNS) / float64(span)
		r.SendPct = 100 * float64(m1.SendNS-m0.SendNS) / float64(span)
		if rt := m1.RoomTicks - m0.RoomTicks; rt > 0 && n > 0 {
			r.BuildNsPerListener = float64(m1.BuildNS-m0.BuildNS) / float64(rt) / float64(n)
		}
		r.ShedTicks, r.ShedSpells = m1.ShedTicks-m0.ShedTicks, m1.ShedSpells-m0.ShedSpells
		r.SplitSends = m1.SplitSends - m0.SplitSends
		if played := m1.Emitted - m0.Emitted; played > 0 {
			r.SpeakerTargetMs = 1000 * (m1.TargetS - m0.TargetS) / played
			r.SpeakerDelayMs = 1000 * (m1.DelayS - m0.DelayS) / played
		}
	}
	if r.Sent > 0 {
		r.Datagram = float64(m1.Bytes-m0.Bytes) / float64(r.Sent)
		r.CPUusPerPkt = float64((m1.CPU - m0.CPU).Microseconds()) / float64(r.Sent)
	}
	return r
}

// account counts delivery per listener: what it received against what it
// should have, its first to last sequence number plus the ticks the sender
// skipped (a skipped tick sends nothing, so sequence numbers do not show
// it); a listener that received nothing should have had the window's
// ticks.
func (r *RunStats) account(ls []listenerState, skipped uint64, window time.Duration) {
	under98, under999 := 0, 0
	for _, l := range ls {
		var want uint64
		if l.count == 0 {
			r.Silent++
			want = uint64(window / (20 * time.Millisecond))
		} else {
			want = uint64(l.last-l.first+1) + skipped
		}
		r.Received += uint64(l.count)
		r.Expected += want
		frac := float64(l.count) / float64(max(want, 1))
		if frac < 0.98 {
			under98++
		}
		if frac < 0.999 {
			under999++
		}
	}
	n := float64(max(len(ls), 1))
	r.Under98Pct, r.Under999Pct = 100*float64(under98)/n, 100*float64(under999)/n
	if r.Expected > 0 {
		r.DeliveredPct = 100 * float64(r.Received) / float64(r.Expected)
	}
	if r.WindowS > 0 {
		r.PerListenerPerS = float64(r.Received) / n / r.WindowS
	}
}
