package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/handsup-audio/handsup/bench/capacity"
)

// Bad flags exit with status 2 and say why, before any work starts.
func TestRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-active", "6", "-speakers", "5"}, "must not exceed speakers"},
		{[]string{"-listeners", "-1"}, "must not be negative"},
		{[]string{"-rooms", "0"}, "rooms must be at least 1"},
		{[]string{"-duration", "500ms"}, "at least 1s"},
		{[]string{"-bogus"}, "flag provided but not defined"},
		{[]string{"extra"}, "unexpected arguments"},
		{[]string{"-scenario", "nope"}, `unknown -scenario "nope" (valid: room, uplink-fec,`},
		{[]string{"-impair", "nope"}, `unknown -impair profile "nope" (valid: clean, lte-good,`},
		{[]string{"-scenario", "uplink-fec", "-impair", "loss-10"}, "-impair applies to -scenario room only"},
		{[]string{"-scenario", "all", "-impair", "loss-10"}, "-impair applies to -scenario room only"},
		{[]string{"-impair", "loss-10", "-listeners", "3"}, "-listeners does not apply"},
		{[]string{"-scenario", "dtx", "-duration", "500ms"}, "at least 1s"},
		{[]string{"-e2e", "-sweep", "800,x"}, `"x" is not a number`},
		{[]string{"-e2e", "-listeners", "0"}, "listeners 0: want 1 to 100,000"},
		{[]string{"-e2e", "-receivers", "65"}, "receivers 65: want 0 (default 4) to 64"},
		{[]string{"-e2e", "-phases", "11"}, "phases 11: want 0 (the engine's default) to 10"},
		{[]string{"-scenario", "jitter-60", "-jitter-extra", "-1ms"}, "-jitter-extra must be 0 to 200ms"},
		{[]string{"-jitter-extra", "8ms"}, "-jitter-extra applies to -impair and -scenario runs"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: stderr %q, want it to say %q", tc.args, stderr.String(), tc.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("%v: wrote %q to stdout", tc.args, stdout.String())
		}
	}
}

// -impair runs the room scenario on a simulated clock and prints one JSON
// object with the per-speaker and per-listener figures.
func TestImpairJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-impair", "loss-10", "-duration", "1s", "-json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var res struct {
		Scenario  string  `json:"scenario"`
		Profile   string  `json:"profile"`
		DurationS float64 `json:"duration_s"`
		Speakers  []struct {
			PacketsLost *int64 `json:"packets_lost"`
		} `json:"speakers"`
		Listeners []struct {
			EffectiveLossPct *float64 `json:"effective_loss_pct"`
			StreamContinuous bool     `json:"stream_continuous"`
		} `json:"listeners"`
	}
	dec := json.NewDecoder(&stdout)
	if err := dec.Decode(&res); err != nil {
		t.Fatal(err)
	}
	if dec.More() {
		t.Error("more than one JSON value on stdout")
	}
	if res.Scenario != "room" || res.Profile != "loss-10" || res.DurationS != 1 || len(res.Speakers) != 3 || len(res.Listeners) != 4 {
		t.Fatalf("got %+v", res)
	}
	for _, l := range res.Listeners {
		if l.EffectiveLossPct == nil || !l.StreamContinuous {
			t.Errorf("listener %+v", l)
		}
	}
}

// -scenario all prints one row per acceptance target; its JSON holds every
// scenario and every check.
func TestScenarioAll(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-scenario", "all", "-duration", "1s", "-json"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var res suiteResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Scenarios) != 11 || len(res.Checks) != 19 || res.Passed+res.Failed != 19 {
		t.Fatalf("%d scenarios, %d checks (%d pass, %d fail), want 11 and 19", len(res.Scenarios), len(res.Checks), res.Passed, res.Failed)
	}
	stdout.Reset()
	printSuite(&stdout, res)
	for _, c := range res.Checks {
		if !strings.Contains(stdout.String(), c.Target) {
			t.Errorf("table lacks %q", c.Target)
		}
	}
	if n := strings.Count(stdout.String(), "PASS") + strings.Count(stdout.String(), "FAIL"); n != len(res.Checks) {
		t.Errorf("%d PASS/FAIL rows, want %d:\n%s", n, len(res.Checks), stdout.String())
	}
}

// The table gives the listener cost with its spread, and says when it
// could not be resolved instead of printing a figure.
func TestTableListenerCost(t *testing.T) {
	lo, med, hi := 44.0, 48.8, 51.0
	resolved := &capacity.ListenerCost{Listeners: 10000, Repeats: 7, TicksPerRepeat: 25,
		NsMin: &lo, NsMedian: &med, NsMax: &hi, Resolved: true}
	unresolved := &capacity.ListenerCost{Listeners: 3, Repeats: 7, TicksPerRepeat: 25,
		Note: "not resolved: the 3 listeners' CPU is within the ticks' noise"}
	for _, tc := range []struct {
		cost *capacity.ListenerCost
		want string
	}{
		{resolved, "48.8 ns (repeats 44.0–51.0 ns, median of 7 × 25 ticks)"},
		{unresolved, "not resolved: the 3 listeners' CPU is within the ticks' noise"},
		{nil, ""},
	} {
		var out bytes.Buffer
		r := capacity.Result{ListenerCost: tc.cost}
		if tc.cost != nil && tc.cost.Resolved {
			r.NsPerListenerTick = tc.cost.NsMedian
		}
		printTable(&out, r)
		row := ""
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(line, "CPU per listener per tick") {
				row = line
			}
		}
		if !strings.Contains(row, tc.want) || (tc.cost == nil) != (row == "") {
			t.Errorf("listener cost %+v: row %q, want it to say %q", tc.cost, row, tc.want)
		}
	}
}

// The transport comparison follows the main table, one row per transport,
// each figure with its spread, and says what it could not resolve.
func TestTableTransports(t *testing.T) {
	ns := 700.0
	r := capacity.Result{Transports: &capacity.FanOut{Listeners: 200, Repeats: 7, TicksPerRepeat: 50,
		Transports: []capacity.TransportCost{
			{Transport: "engine", User: capacity.Spread{Median: 50, Min: 40, Max: 60}, Total: capacity.Spread{Median: 50, Min: 40, Max: 60},
				Note: "not resolved: noise", PacketsSent: 10, PacketsReceived: 10, DeliveredPct: 100},
			{Transport: "webrtc", NsPerListenerTick: &ns, User: capacity.Spread{Median: 700, Min: 650, Max: 800},
				SendNsPerPacket: &capacity.Spread{Median: 2500, Min: 2400, Max: 2600},
				Total:           capacity.Spread{Median: 3200, Min: 3100, Max: 3300}, Resolved: true,
				PacketsSent: 20, PacketsReceived: 20, DeliveredPct: 100},
		}}}
	var out bytes.Buffer
	printTable(&out, r)
	s := out.String()
	for _, want := range []string{
		"listener cost by transport: 200 listeners vs 1",
		"engine ", "50 [40–60]", "not resolved: noise",
		"webrtc ", "700 [650–800]", "2500 [2400–2600]", "3200 [3100–3300]", "100.00% (20 of 20)", "yes",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("table lacks %q:\n%s", want, s)
		}
	}
}
