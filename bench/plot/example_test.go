package plot_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/handsup-audio/handsup/bench/plot"
)

// Example draws a sweep of three runs as SVG: the tick-time distribution
// of each and the CPU per tick against listeners.
func Example() {
	ticks := func(base time.Duration) []time.Duration {
		out := make([]time.Duration, 500)
		for i := range out {
			out[i] = base + time.Duration(i%50)*20*time.Microsecond
		}
		return out
	}
	f := plot.Figure{
		Runs: []plot.Run{
			{Label: "1000 listeners", TickTimes: ticks(800 * time.Microsecond)},
			{Label: "10000 listeners", TickTimes: ticks(1500 * time.Microsecond)},
		},
		Sweep: []plot.Point{
			{Listeners: 1000, CPUPerTick: 900 * time.Microsecond, TickP50: 1200 * time.Microsecond},
			{Listeners: 10000, CPUPerTick: 2100 * time.Microsecond, TickP50: 1700 * time.Microsecond},
		},
	}
	var svg bytes.Buffer
	if err := plot.Render(&svg, "svg", f); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(bytes.HasPrefix(svg.Bytes(), []byte("<?xml")), bytes.Contains(svg.Bytes(), []byte("listeners per room")))
	// Output: true true
}
