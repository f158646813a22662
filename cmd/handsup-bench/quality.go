package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/handsup-audio/handsup/bench/quality"
)

// qualityArgs are the flags of a listening-quality run (-impair, -scenario).
type qualityArgs struct {
	scenario, profile string
	set               map[string]bool // flags given on the command line
	json              bool
	duration          time.Duration
	seed              uint64
	cpuProfile        string
	jitterExtra       time.Duration // the rooms' jitter.Config.ExtraDelay
	readOnArrival     bool          // quality.Scenario.ReadOnArrival
}

// suiteResult is -scenario all's JSON object.
type suiteResult struct {
	Scenarios []quality.Result `json:"scenarios"`
	Checks    []quality.Check  `json:"checks"`
	Passed    int              `json:"passed"`
	Failed    int              `json:"failed"`
}

// runQuality runs one scenario, or all the acceptance scenarios, on a
// simulated clock and prints the result. A target that fails is reported
// as FAIL; the exit status stays 0 (it is a measurement, not a test).
func runQuality(a qualityArgs, stdout, stderr io.Writer) int {
	usage := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "handsup-bench: "+format+"\n", args...)
		return 2
	}
	for _, f := range []string{"rooms", "speakers", "active", "listeners", "workers"} {
		if a.set[f] {
			return usage("-%s does not apply to -impair or -scenario runs", f)
		}
	}
	name := a.scenario
	if name == "" {
		name = quality.RoomScenario
	}
	if a.profile != "" && name != quality.RoomScenario {
		return usage("-impair applies to -scenario %s only; %s sets its own links", quality.RoomScenario, name)
	}
	if a.profile != "" && !slices.Contains(quality.ProfileNames(), a.profile) {
		return usage("unknown -impair profile %q (valid: %s)", a.profile, strings.Join(quality.ProfileNames(), ", "))
	}
	names := []string{name}
	if name == "all" {
		names = quality.AcceptanceScenarios()
	} else if !slices.Contains(quality.ScenarioNames(), name) {
		return usage("unknown -scenario %q (valid: %s, all)", name, strings.Join(quality.ScenarioNames(), ", "))
	}
	if a.set["duration"] && a.duration < time.Second {
		return usage("-duration must be at least 1s, got %v", a.duration)
	}
	if a.jitterExtra < 0 || a.jitterExtra > 200*time.Millisecond {
		return usage("-jitter-extra must be 0 to 200ms, got %v", a.jitterExtra)
	}
	var scs []quality.Scenario
	for _, n := range names {
		sc, err := quality.NewScenario(n, a.profile)
		if err != nil {
			return usage("%v", err)
		}
		if a.set["seed"] {
			sc.Seed = a.seed
		}
		if a.set["duration"] {
			sc.Duration = a.duration
		}
		if a.set["jitter-extra"] {
			sc.Room.Jitter.ExtraDelay = a.jitterExtra
		}
		sc.ReadOnArrival = a.readOnArrival
		scs = append(scs, sc)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile, ok := startCPUProfile(a.cpuProfile, stderr)
	if !ok {
		return 1
	}
	defer stopProfile()
	// Each scenario runs its impaired and clean runs at once; two
	// scenarios at a time keep the processors busy when one of them has
	// no clean run to make (no impaired link).
	var total time.Duration
	for i := range scs {
		total += scs[i].SimulatedTotal()
	}
	prog := startSimProgress(stderr, total)
	for i := range scs {
		scs[i].Progress = prog.add
	}
	results, err := quality.RunSuite(ctx, scs, runtime.GOMAXPROCS(0))
	prog.finish()
	if err != nil {
		return failed(ctx, err, stderr)
	}

	var out any = results[0]
	if name == "all" {
		s := suiteResult{Scenarios: results}
		for _, r := range results {
			for _, c := range r.Checks {
				s.Checks = append(s.Checks, c)
				if c.Pass {
					s.Passed++
				} else {
					s.Failed++
				}
			}
		}
		out = s
		if !a.json {
			printSuite(stdout, s)
			return 0
		}
	} else if !a.json {
		printQuality(stdout, results[0])
		return 0
	}
	if err := json.NewEncoder(stdout).Encode(out); err != nil {
		fmt.Fprintf(stderr, "handsup-bench: %v\n", err)
		return 1
	}
	return 0
}

// opt formats an optional figure.
func opt(p *float64, format string) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf(format, *p)
}

func printQuality(w io.Writer, r quality.Result) {
	fmt.Fprintf(w, "handsup-bench: scenario %s (%s), %gs simulated, seed %d, %.1fs wall\n\n",
		r.Scenario, r.Profile, r.DurationS, r.Seed, r.WallS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "speaker\tuplink\tsent\tlost\tFEC\tFEC %\tLBRR %\tlate %\tbuffer ms\ttarget ms\tp95 arrival ms\tconceal events\tinserted\tremoved\tmax level err ms\t")
	for _, s := range r.Speakers {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.1f\t%.1f\t%.2f\t%.1f\t%.0f\t%s\t%d\t%d\t%d\t%.1f\t\n",
			s.Name, s.Uplink, s.PacketsSent, s.PacketsLost, s.FECRecovered, s.FECRecoveredPct, s.FECAvailablePct,
			s.LateLossPct, s.MeanBufferDelayMs, s.TargetDelayMs, opt(s.ArrivalP95Ms, "%.1f"),
			s.ConcealmentEvents, s.InsertedSamples, s.RemovedSamples, s.MaxLevelErrorMs)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "listener\tdownlink\tRED\tsent\traw loss %\teff. loss %\tconceal ratio\tRED rec\tFEC rec\tSNR dB\tsegSNR dB\tm2e ms (clean)\tswitches\ttier\tcontinuous\t")
	for _, l := range r.Listeners {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%.2f\t%.2f\t%.4f\t%d\t%.0f\t%s\t%s\t%s (%s)\t%d\t%s\t%v\t\n",
			l.Name, l.Downlink, l.RED, l.PacketsSent, l.RawLossPct, l.EffectiveLossPct, l.ConcealmentRatio,
			l.REDRecovered, l.FECRecovered, opt(l.SNRdB, "%.1f"), opt(l.SegSNRdB, "%.1f"),
			opt(l.MouthToEarMs, "%.0f"), opt(l.CleanMouthToEarMs, "%.0f"), l.TierSwitches, l.FinalTier, l.StreamContinuous)
	}
	tw.Flush()
	if len(r.Checks) > 0 {
		fmt.Fprintln(w)
		printChecks(w, r.Checks)
	}
}

func printSuite(w io.Writer, s suiteResult) {
	fmt.Fprintf(w, "handsup-bench: acceptance scenarios on a simulated clock: %d targets, %d pass, %d fail\n\n",
		len(s.Checks), s.Passed, s.Failed)
	printChecks(w, s.Checks)
	var wall float64
	for _, r := range s.Scenarios {
		wall += r.WallS
	}
	fmt.Fprintf(w, "\nsimulated %s; wall time per scenario: ", func() string {
		var t float64
		for _, r := range s.Scenarios {
			t += r.DurationS
		}
		return fmt.Sprintf("%gs", t)
	}())
	for i, r := range s.Scenarios {
		if i > 0 {
			fmt.Fprint(w, ", ")
		}
		fmt.Fprintf(w, "%s %.1fs", r.Scenario, r.WallS)
	}
	fmt.Fprintln(w)
}

func printChecks(w io.Writer, checks []quality.Check) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\ttarget\tmeasured\tlimit\tresult\tdetail")
	for _, c := range checks {
		res := "FAIL"
		if c.Pass {
			res = "PASS"
		}
		unit := c.Unit
		if unit != "" && unit != "%" {
			unit = " " + unit
		}
		fmt.Fprintf(tw, "%s\t%s\t%s%s\t%s %g%s\t%s\t%s\n", c.Scenario, c.Target,
			opt(c.Measured, "%.2f"), unit, c.Op, c.Limit, unit, res, c.Detail)
	}
	tw.Flush()
}
