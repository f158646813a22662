package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/bench/capacity"
)

func TestParseListeners(t *testing.T) {
	got, err := parseListeners("1000, 5000,10000")
	if err != nil || len(got) != 3 || got[0] != 1000 || got[2] != 10000 {
		t.Errorf("parseListeners: %v, %v", got, err)
	}
	for _, bad := range []string{"", "10k", "1,,2", "5,-1"} {
		if _, err := parseListeners(bad); err == nil {
			t.Errorf("parseListeners(%q) accepted", bad)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-listeners", "100,x"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), `"x" is not a number`) {
		t.Errorf("-listeners 100,x: exit %d, %q", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"-plot", "out.jpg"}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), ".png or .svg") {
		t.Errorf("-plot out.jpg: exit %d, %q", code, stderr.String())
	}
}

// A sweep's summary has a row per count, and its plot is written.
func TestSweepOutput(t *testing.T) {
	var results []capacity.Result
	for i, n := range []int{1000, 5000, 10000} {
		ticks := make([]time.Duration, 100)
		for j := range ticks {
			ticks[j] = time.Duration(1000+100*i+j) * time.Microsecond
		}
		ns := 50.0 + float64(i)
		results = append(results, capacity.Result{Listeners: n, TickP50us: 1000, TickP99us: 2000,
			CPUusPerTick: 900 + 100*float64(i), NsPerListenerTick: &ns, TickTimes: ticks})
	}
	var out bytes.Buffer
	printSweep(&out, results)
	for _, want := range []string{"1000  ", "5000  ", "10000  ", "1100.0", "52.0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("sweep table lacks %q:\n%s", want, out.String())
		}
	}
	f := figure(results)
	if len(f.Runs) != 3 || len(f.Sweep) != 3 || f.Sweep[2].CPUPerTick != 1100*time.Microsecond {
		t.Errorf("figure %+v", f.Sweep)
	}
	if one := figure(results[:1]); one.Sweep != nil {
		t.Error("a single run has a sweep panel")
	}
}

// The progress line names the run, the phase and its share, the time
// elapsed and an estimate of the time left, which falls as the run goes.
func TestProgressLine(t *testing.T) {
	cfg := capacity.Config{Rooms: 1, Speakers: 5, Active: 3, Duration: 30 * time.Second, TransportListeners: 200}
	a, b := cfg, cfg
	a.Listeners, b.Listeners = 1000, 5000
	var out bytes.Buffer
	p := &progress{configs: []capacity.Config{a, b}}
	p.printer = &printer{w: &out, start: time.Now(), line: p.line}
	report := p.forRun(0)
	report(capacity.Progress{Phase: capacity.PhaseRun, Done: 500, Total: 1550})
	p.print(p.start.Add(12 * time.Second))
	first := p.leftLocked(time.Now())
	report(capacity.Progress{Phase: capacity.PhaseRun, Done: 1000, Total: 1550})
	p.print(p.start.Add(22 * time.Second))
	if second := p.leftLocked(time.Now()); second >= first {
		t.Errorf("time left went from %v to %v", first, second)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "run 1/2 (1000 listeners), real-time run 32%, 12s elapsed, about ") ||
		!strings.HasSuffix(lines[0], " left") {
		t.Errorf("progress lines:\n%s", out.String())
	}
}

// The simulated-clock progress says how much of the simulated time is
// done and what is left at the rate so far.
func TestSimProgressLine(t *testing.T) {
	p := &simProgress{total: 100 * time.Second}
	p.printer = &printer{start: time.Now(), line: p.line}
	if line := p.line(p.start.Add(time.Second)); line != "" {
		t.Errorf("before any progress: %q", line)
	}
	p.add(25 * time.Second)
	want := "handsup-bench: simulated 25s of 1m40s (25%), 10s elapsed, about 30s left to simulate, then the comparison"
	if line := p.line(p.start.Add(10 * time.Second)); line != want {
		t.Errorf("line %q, want %q", line, want)
	}
	p.add(75 * time.Second)
	if line := p.line(p.start.Add(30 * time.Second)); !strings.Contains(line, "comparing the listeners' audio") {
		t.Errorf("after the simulation: %q", line)
	}
}

// startProgress prints nothing for a run shorter than progressAfter.
func TestProgressQuietForShortRuns(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := startProgress(f, []capacity.Config{{Duration: time.Second}})
	p.forRun(0)(capacity.Progress{Phase: capacity.PhaseEncode})
	p.finish()
	if st, _ := f.Stat(); st.Size() != 0 {
		t.Errorf("a short run printed %d bytes of progress", st.Size())
	}
}
