package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/handsup-audio/handsup/bench/capacity"
	"github.com/handsup-audio/handsup/bench/plot"
)

// parseListeners reads -listeners: one count, or a comma-separated list
// of counts for a sweep.
func parseListeners(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("-listeners: %q is not a number (want N or N,N,...)", f)
		}
		if n < 0 {
			return nil, fmt.Errorf("capacity: listeners must not be negative, got %d", n)
		}
		out = append(out, n)
	}
	return out, nil
}

// runCapacity runs cfg once per listener count, with a progress line on
// stderr, and prints the results (a sweep: each table, then the sweep's
// summary; with -json one object, or an array for a sweep). With plotPath
// it draws the tick-time distributions and, for a sweep, the cost against
// listeners.
func runCapacity(ctx context.Context, cfg capacity.Config, counts []int, asJSON bool, plotPath string, stdout, stderr io.Writer) (int, error) {
	configs := make([]capacity.Config, len(counts))
	for i, n := range counts {
		configs[i] = cfg
		configs[i].Listeners = n
	}
	prog := startProgress(stderr, configs)
	results := make([]capacity.Result, 0, len(configs))
	for i, c := range configs {
		c.Progress = prog.forRun(i)
		res, err := capacity.Run(ctx, c)
		if err != nil {
			prog.finish()
			return 1, err
		}
		results = append(results, res)
	}
	prog.finish()

	if plotPath != "" {
		if err := plot.Write(plotPath, figure(results)); err != nil {
			return 1, err
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		var v any = results
		if len(results) == 1 {
			v = results[0]
		}
		if err := enc.Encode(v); err != nil {
			return 1, err
		}
		return 0, nil
	}
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		printTable(stdout, r)
	}
	if len(results) > 1 {
		printSweep(stdout, results)
	}
	return 0, nil
}

// figure is what -plot draws of the results.
func figure(results []capacity.Result) plot.Figure {
	r0 := results[0]
	f := plot.Figure{Title: fmt.Sprintf("Tick time: %d room(s), %d speakers (%d talking)", r0.Rooms, r0.Speakers, r0.Active)}
	for _, r := range results {
		f.Runs = append(f.Runs, plot.Run{Label: fmt.Sprintf("%d listeners", r.Listeners), TickTimes: r.TickTimes})
		f.Sweep = append(f.Sweep, plot.Point{
			Listeners:  r.Listeners,
			CPUPerTick: time.Duration(r.CPUusPerTick * float64(time.Microsecond)),
			TickP50:    time.Duration(r.TickP50us * float64(time.Microsecond)),
		})
	}
	if len(f.Sweep) < 2 {
		f.Sweep = nil
	}
	return f
}

// printSweep sums a sweep up, one row per listener count.
func printSweep(w io.Writer, results []capacity.Result) {
	fmt.Fprintf(w, "\nsweep: listeners per room against the tick\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "listeners\ttick p50 / p99 µs\tCPU µs per tick\tns per listener per tick\toverruns")
	for _, r := range results {
		ns := "—"
		if r.NsPerListenerTick != nil {
			ns = fmt.Sprintf("%.1f", *r.NsPerListenerTick)
		}
		fmt.Fprintf(tw, "%d\t%.0f / %.0f\t%.1f\t%s\t%d\n", r.Listeners, r.TickP50us, r.TickP99us, r.CPUusPerTick, ns, r.TickOverruns)
	}
	tw.Flush()
}
