package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/handsup-audio/handsup/bench/capacity"
	"github.com/handsup-audio/handsup/bench/e2e"
	"github.com/handsup-audio/handsup/bench/quality"
	"github.com/handsup-audio/handsup/cmd/internal/procs"
)

func main() {
	e2e.ChildMain() // -e2e runs its senders as children of this executable
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("handsup-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg capacity.Config
	fs.IntVar(&cfg.Rooms, "rooms", 1, "rooms on the engine")
	fs.IntVar(&cfg.Speakers, "speakers", 5, "speakers on each room's stage")
	fs.IntVar(&cfg.Active, "active", 3, "speakers per room who talk (the others send DTX silence)")
	listeners := fs.String("listeners", "10000", "listeners per room; a comma-separated `list` (1000,5000,10000) runs one measurement per count, a sweep")
	plotPath := fs.String("plot", "", "draw the tick-time distribution and, for a sweep, CPU per tick against listeners into `file` (.png or .svg)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured run, after a 1 s warm-up; with -impair or -scenario, the simulated run (default: the scenario's)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the voices, SSRCs and sequence numbers")
	fs.IntVar(&cfg.Workers, "workers", 0, "engine workers (0: GOMAXPROCS)")
	fs.IntVar(&cfg.TransportListeners, "transport-listeners", 200, "listeners per room in the transport comparison "+
		"(engine alone, plain RTP, WebRTC with SRTP, over loopback); 0 skips it. It adds the WebRTC clients' "+
		"connection (a few seconds per hundred) and about 10 s")
	impairName := fs.String("impair", "", "listening-quality run of the room scenario with every link impaired by `profile`: "+
		strings.Join(quality.ProfileNames(), ", "))
	scenario := fs.String("scenario", "", "listening-quality `scenario` on a simulated clock: "+
		strings.Join(quality.ScenarioNames(), ", ")+", or all (the acceptance scenarios, one row per target)")
	jitterExtra := fs.Duration("jitter-extra", 0, "with -impair or -scenario: the rooms' jitter.Config.ExtraDelay, "+
		"delay added to a jittery link's target for fewer late packets")
	readOnArrival := fs.Bool("read-on-arrival", false, "with -impair or -scenario: hand each uplink packet to the engine as it arrives "+
		"(as WebRTC does) rather than at the next tick's start (as the server's plain RTP transport does)")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole benchmark to `file`")
	e2eOpts := addE2EFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "handsup-bench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if e2eOpts.on {
		return runE2E(e2eOpts, set, cfg.Rooms, *listeners, cfg.Speakers, cfg.Active, cfg.Workers, cfg.Duration, *cpuProfile, *asJSON, stdout, stderr)
	}
	if *impairName != "" || *scenario != "" {
		return runQuality(qualityArgs{
			scenario: *scenario, profile: *impairName, set: set, json: *asJSON,
			duration: cfg.Duration, seed: cfg.Seed, cpuProfile: *cpuProfile, jitterExtra: *jitterExtra,
			readOnArrival: *readOnArrival,
		}, stdout, stderr)
	}
	if set["jitter-extra"] {
		fmt.Fprintln(stderr, "handsup-bench: -jitter-extra applies to -impair and -scenario runs")
		return 2
	}
	counts, err := parseListeners(*listeners)
	if err == nil {
		cfg.Listeners = counts[0]
		err = validate(cfg)
	}
	if err == nil && *plotPath != "" && !strings.HasSuffix(*plotPath, ".png") && !strings.HasSuffix(*plotPath, ".svg") {
		err = fmt.Errorf("-plot %q: the file name must end in .png or .svg", *plotPath)
	}
	if err != nil {
		fmt.Fprintf(stderr, "handsup-bench: %v\n", err)
		return 2
	}

	cfg.Workers = procs.SpareProcessor(cfg.Workers)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile, ok := startCPUProfile(*cpuProfile, stderr)
	if !ok {
		return 1
	}
	defer stopProfile()

	code, err := runCapacity(ctx, cfg, counts, *asJSON, *plotPath, stdout, stderr)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "handsup-bench: interrupted")
			return 130
		}
		fmt.Fprintf(stderr, "handsup-bench: %v\n", err)
	}
	return code
}

// validate adds the command's own limit to capacity's: a run shorter than a
// second says little about a 20 ms clock.
func validate(cfg capacity.Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Duration < time.Second {
		return fmt.Errorf("-duration must be at least 1s, got %v", cfg.Duration)
	}
	return nil
}

func printTable(w io.Writer, r capacity.Result) {
	fmt.Fprintf(w, "handsup-bench: %d room(s) × %d speakers (%d talking) + %d listeners, %gs measured\n",
		r.Rooms, r.Speakers, r.Active, r.Listeners, r.DurationS)
	fmt.Fprintf(w, "%s, %d workers, GOMAXPROCS %d, libopus %s, seed %d\n\n", r.GoVersion, r.Workers, r.GOMAXPROCS, r.Libopus, r.Seed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{name}, args...)...)
	}
	row("ticks", "%d", r.Ticks)
	row("tick wall time p50 / p99 / max", "%.0f / %.0f / %.0f µs", r.TickP50us, r.TickP99us, r.TickMaxus)
	row("tick overruns (skipped)", "%d (%d)", r.TickOverruns, r.TickSkipped)
	row("decodes / encodes per tick", "%.2f / %.2f", r.DecodesPerTick, r.EncodesPerTick)
	row("concealed frames per tick", "%.2f", r.ConcealedPerTick)
	row("incoming packets dropped", "%d", r.DroppedPackets)
	row("packets out per tick", "%.1f (listeners %.1f, %.0f bytes)", r.PacketsOutPerTick, r.ListenerPacketsPerTick, r.ListenerBytesPerTick)
	row("CPU per tick", "%.1f µs", r.CPUusPerTick)
	row("codec floor per tick", "%.1f µs (decode %.1f µs × %.2f + encode %.1f µs × %.2f)",
		r.CodecFloorUsPerTick, r.DecodeUS, r.DecodesPerTick, r.EncodeUS, r.EncodesPerTick)
	row("overhead ratio (CPU / floor)", "%.3f", r.OverheadRatio)
	if c := r.ListenerCost; c != nil {
		if c.Resolved {
			row("CPU per listener per tick", "%.1f ns (repeats %.1f–%.1f ns, median of %d × %d ticks)",
				*c.NsMedian, *c.NsMin, *c.NsMax, c.Repeats, c.TicksPerRepeat)
		} else {
			row("CPU per listener per tick", "%s", c.Note)
		}
		row("one room's tick, with / without listeners", "%.1f / %.1f µs (thread CPU, %d listeners / 1)",
			c.TickCPUusWith, c.TickCPUusWithout, c.Listeners)
	}
	row("allocations per tick", "%.3f", r.AllocsPerTick)
	tw.Flush()
	if r.Transports != nil {
		printTransports(w, r.Transports)
	}
}

// printTransports prints FanOut's figures, one row per transport: each is
// the median repeat, with the least and greatest in brackets.
func printTransports(w io.Writer, f *capacity.FanOut) {
	fmt.Fprintf(w, "\nlistener cost by transport: %d listeners vs 1, twin rooms, %d repeats × %d ticks (ns of thread CPU per listener per tick)\n",
		f.Listeners, f.Repeats, f.TicksPerRepeat)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	spread := func(s capacity.Spread, prec int) string {
		return fmt.Sprintf("%.*f [%.*f–%.*f]", prec, s.Median, prec, s.Min, prec, s.Max)
	}
	fmt.Fprintln(tw, "transport\tns_per_listener_tick (tick − flush)\tsend ns/packet (flush)\ttotal ns/listener/tick\tallocs/listener/tick\tdelivered\tresolved")
	for _, c := range f.Transports {
		send := "—"
		if c.SendNsPerPacket != nil {
			send = spread(*c.SendNsPerPacket, 0)
		}
		resolved := "yes"
		if !c.Resolved {
			resolved = "no"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f%% (%d of %d)\t%s\n", c.Transport, spread(c.User, 0), send,
			spread(c.Total, 0), spread(c.Allocs, 3), c.DeliveredPct, c.PacketsReceived, c.PacketsSent, resolved)
	}
	tw.Flush()
	for _, c := range f.Transports {
		if c.Note != "" {
			fmt.Fprintf(w, "%s: %s\n", c.Transport, c.Note)
		}
	}
}

// startCPUProfile starts a CPU profile into path, if one is asked for; it
// reports a failure on stderr and returns false.
func startCPUProfile(path string, stderr io.Writer) (stop func(), ok bool) {
	if path == "" {
		return func() {}, true
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(stderr, "handsup-bench: %v\n", err)
		return nil, false
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		fmt.Fprintf(stderr, "handsup-bench: cpu profile: %v\n", err)
		return nil, false
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, true
}
