package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/handsup-audio/handsup/bench/e2e"
	"github.com/handsup-audio/handsup/cmd/internal/procs"
)

// e2eFlags are the end-to-end benchmark's own flags (-e2e).
type e2eFlags struct {
	on                bool
	sweep             string
	repeats           int
	joinRate          float64
	floorReader       bool
	floorFragmentable bool
	noFloor           bool
	paired            bool
	sendSplit         int
	phases            int
	shed              int
	receivers         int
	warmUp            time.Duration
}

func addE2EFlags(fs *flag.FlagSet) *e2eFlags {
	f := &e2eFlags{}
	fs.BoolVar(&f.on, "e2e", false, "end-to-end benchmark over real UDP on loopback: the engine with session/rtpudp in a process of its own, "+
		"its listeners received and counted, against a bare sendmmsg sender (the floor) to the same listeners (bench/e2e); "+
		"takes -rooms, -listeners (per room, or -sweep), -speakers (default 3 here), -active (default all), -duration, -workers, -cpuprofile (the server's window), -json")
	fs.StringVar(&f.sweep, "sweep", "", "with -e2e: comma-separated listener counts, one step each (e.g. 800,1600,3200,6400,10000); as -listeners with a list")
	fs.IntVar(&f.repeats, "repeats", 3, "with -e2e: handsup and floor runs per step, interleaved")
	fs.Float64Var(&f.joinRate, "join-rate", 0, "with -e2e: join the listeners into the live room at this many a second "+
		"(0: as fast as they go, before the warm-up) and report how long joins took")
	fs.IntVar(&f.shed, "shed-complexity", 0, "with -e2e: the server engine's engine.Config.Shed.Complexity, the Opus complexity its encoders drop to while its ticks near their 20 ms (0: the engine's default, 1; -1: never shed)")
	fs.IntVar(&f.phases, "phases", 0, "with -e2e: the server engine's engine.Config.Phases (clocks its rooms' ticks are spread over, 20 ms/phases apart; 0: the engine's default)")
	fs.IntVar(&f.sendSplit, "send-split", 0, "with -e2e: the server room's engine.RoomConfig.SendSplit (listeners per send worker; 0: the engine's default)")
	fs.IntVar(&f.receivers, "receivers", 4, "with -e2e: the client's receiving sockets, each on a port of its own for a share of the listeners")
	fs.BoolVar(&f.noFloor, "no-floor", false, "with -e2e: run handsup alone")
	fs.BoolVar(&f.paired, "paired", false, "with -e2e: run handsup and the floor at once in each repeat, each to listeners of its own, "+
		"so that the ratio is of one window on the same machine, for comparing server builds (not of one sender alone: each shares the machine with the other, which costs the lean floor more)")
	fs.BoolVar(&f.floorFragmentable, "floor-fragmentable", false, "with -e2e: run the floor on a socket without the don't-fragment bit "+
		"(the issue's first floor; the kernel then draws an IP identifier per datagram, which the server's socket does not)")
	fs.BoolVar(&f.floorReader, "floor-reader", false, "with -e2e: also run the floor with a goroutine parked reading its socket, as a server's receive loop is")
	fs.DurationVar(&f.warmUp, "warmup", 2*time.Second, "with -e2e: wait this long after the joins before measuring")
	return f
}

// runE2E runs -e2e. set holds the flags given on the command line.
func runE2E(f *e2eFlags, set map[string]bool, rooms int, listeners string, speakers, active, workers int, duration time.Duration,
	profile string, asJSON bool, stdout, stderr io.Writer) int {
	cfg := e2e.Config{
		Repeats: f.repeats, Duration: duration, WarmUp: f.warmUp, JoinRate: f.joinRate,
		FloorReader: f.floorReader, FloorFragmentable: f.floorFragmentable, NoFloor: f.noFloor, Paired: f.paired, Profile: profile, SendSplit: f.sendSplit, Phases: f.phases, ShedComplexity: f.shed, Receivers: f.receivers,
		Progress: func(line string) { fmt.Fprintln(stderr, line) },
	}
	if set["speakers"] {
		cfg.Speakers = speakers
	}
	if set["active"] {
		cfg.Talking = active
	}
	cfg.Rooms = rooms
	list := listeners
	if f.sweep != "" {
		list = f.sweep
	}
	counts, err := parseListeners(list)
	if err == nil {
		cfg.Listeners = counts
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "handsup-bench: %v\n", err)
		return 2
	}
	// The server child runs with what cmd/handsup would: a spare P.
	cfg.Workers = procs.SpareProcessor(workers)
	cfg.ServerProcs = runtime.GOMAXPROCS(0)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := e2e.Run(ctx, cfg)
	if err != nil {
		return failed(ctx, err, stderr)
	}
	if asJSON {
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			fmt.Fprintf(stderr, "handsup-bench: %v\n", err)
			return 1
		}
		return 0
	}
	printE2E(stdout, res)
	return 0
}

// failed reports a run's error and returns the exit status: 130 when ctx
// was interrupted, 1 otherwise.
func failed(ctx context.Context, err error, stderr io.Writer) int {
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "handsup-bench: interrupted")
		return 130
	}
	fmt.Fprintf(stderr, "handsup-bench: %v\n", err)
	return 1
}

func printE2E(w io.Writer, r e2e.Result) {
	fmt.Fprintf(w, "handsup-bench -e2e: %d room(s) × %d speakers (%d talking) and N listeners, on loopback; %d × %gs windows per sender and step\n",
		r.Rooms, r.Speakers, r.Talking, r.Repeats, r.DurationS)
	shed := fmt.Sprintf("sheds load at complexity %d", r.ShedComplexity)
	if r.ShedComplexity < 0 {
		shed = "never sheds load"
	}
	fmt.Fprintf(w, "%s, %d CPUs, server GOMAXPROCS %d, phases %d, %s, load average %s (after: %s); client sockets' rcvbuf %d\n",
		r.GoVersion, r.NumCPU, r.ServerProc, r.Phases, shed, r.Load, r.LoadAfter, r.ClientRcv)
	if r.Paired {
		fmt.Fprintf(w, "paired: in each repeat handsup and the floor ran at once, in the same window, each to listeners of its own; the client CPU is for both\n")
	}
	fmt.Fprintf(w, "medians of the repeats [least–greatest]; CPU in %% of one core; %s\n\n", r.Note)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "N\tsender\tCPU %\tratio\tµs/packet\tratio/packet\tcodec floor %\tratio to codec floor + floor\tpkt/listener/s\tdelivered %\t<98% / <99.9% of listeners\tinter-arrival p99 ms\ttick p99 / late p99 ms\toverruns / skipped\tshed ticks\tclient CPU %")
	sp := func(s e2e.Spread, prec int) string {
		return fmt.Sprintf("%.*f [%.*f–%.*f]", prec, s.Median, prec, s.Min, prec, s.Max)
	}
	for _, st := range r.Steps {
		for _, kind := range []string{e2e.KindHandsup, e2e.KindFloor, e2e.KindFloorReader} {
			s, ok := st.Summary[kind]
			if !ok {
				continue
			}
			ratio, pktRatio, codec, floors := "", "", "", ""
			if kind == e2e.KindHandsup && st.Ratio.Median > 0 {
				ratio, pktRatio = sp(st.Ratio, 2), sp(st.PacketRatio, 2)
				codec, floors = sp(st.CodecPct, 1), sp(st.FloorsRatio, 2)
			}
			shed := ""
			if kind == e2e.KindHandsup {
				shed = fmt.Sprintf("%.0f", s.ShedTicks.Median)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%.3f\t%.2f / %.2f\t%.1f\t%.1f / %.1f\t%.0f / %.0f\t%s\t%.1f\n",
				st.Listeners, kind, sp(s.CPUPct, 1), ratio, sp(s.CPUusPerPkt, 2), pktRatio, codec, floors, s.PerListenerPerS.Median, s.DeliveredPct.Median,
				s.Under98Pct.Median, s.Under999Pct.Median, s.InterArrivalP99.Median, s.TickP99.Median, s.LateP99.Median,
				s.Overruns.Median, s.Skipped.Median, shed, s.ClientCPUPct.Median)
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "\nwhere packets went, per run (send errors; dropped at the receivers' sockets, SO_RXQ_OVFL; /proc/net/snmp Udp RcvbufErrors / SndbufErrors; socket buffers granted); overruns and the machine's stalls (a client thread sleeping 2 ms at a time woke over 10 ms late: the machine gave it no CPU that long)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "N\tsender\trepeat\tsent\treceived\texpected\tsend errors\trxq overflow\trcvbuf / sndbuf errors\tsendmmsg calls\tsndbuf granted\tjoins p99 / max ms (s)\tspeakers: concealment events / target ms\toverruns / skipped\tmachine stalls: count / ms in all / longest ms")
	for _, st := range r.Steps {
		for _, run := range st.Runs {
			joins := ""
			if j := run.Joins; j != nil {
				joins = fmt.Sprintf("%.1f / %.1f (%.1f s, skipped %d)", j.P99Ms, j.MaxMs, j.Seconds, j.Skipped)
			}
			speakers := ""
			if run.Kind == e2e.KindHandsup {
				speakers = fmt.Sprintf("%d / %.1f", run.SpeakerConcealments, run.SpeakerTargetMs)
			}
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d / %d\t%d\t%d\t%s\t%s\t%d / %d\t%d / %.1f / %.1f\n", run.Listeners, run.Kind, run.Repeat+1,
				run.Sent, run.Received, run.Expected, run.SendErrors, run.RxqOverflow, run.RcvbufErrors, run.SndbufErrors,
				run.SendCalls, run.SndBuf, joins, speakers, run.Overruns, run.Skipped, run.Stalls, run.StalledMs, run.StallMaxMs)
		}
	}
	tw.Flush()
	printTickWork(w, r)
	if r.LargestN > 0 {
		fmt.Fprintf(w, "\nlargest N with ≥ 99.9%% of packets to ≥ 99%% of listeners in every repeat: %d\n", r.LargestN)
	} else {
		fmt.Fprintln(w, "\nno N delivered ≥ 99.9% of packets to ≥ 99% of listeners in every repeat")
	}
}

// printTickWork prints, per handsup run, where its rooms' ticks went.
func printTickWork(w io.Writer, r e2e.Result) {
	fmt.Fprintln(w, "\nwhere handsup's ticks went, per run: the wall time of its rooms' ticks in % of a core, building (under the room's lock: decodes, mix, every listener's packet queued; encodes apart), encoding and sending (engine.Counters.BuildTime, EncodeTime, SendTime), against its CPU; the build per listener and room tick; the room ticks whose sends ran in parts on several workers (engine.Counters.SplitSends)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "N\trepeat\tCPU %\tbuild %\tencode %\tsend %\tCPU − the three, %\tbuild ns a listener\tsplit sends")
	for _, st := range r.Steps {
		for _, run := range st.Runs {
			if run.Kind != e2e.KindHandsup {
				continue
			}
			fmt.Fprintf(tw, "%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\t%d\n", run.Listeners, run.Repeat+1, run.CPUPct,
				run.BuildPct, run.EncodePct, run.SendPct, run.CPUPct-run.BuildPct-run.EncodePct-run.SendPct, run.BuildNsPerListener, run.SplitSends)
		}
	}
	tw.Flush()
}
