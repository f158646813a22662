package impair

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Named is a profile: a Config with a name and a one-line description.
type Named struct {
	Name        string
	Description string
	Config      Config
}

// Profiles returns the named profiles, mildest first and then the test
// cases. Each call returns fresh copies, Burst included, so callers may
// change them; their Seed is 0, to be set by the caller.
//
// Mobile links deliver in order (LTE's PDCP, 3G's and EDGE's RLC
// reassemble before handing packets up), so their jitter does not reorder;
// jitter-30 lets jitter reorder, as NetEQ-style simulations do: at 20 ms
// packet spacing 39% of its packets arrive after one sent later.
func Profiles() []Named {
	return []Named{
		{"clean", "a perfect wire: no loss, delay or reordering", Config{}},
		{"lte-good", "good LTE: rare random loss, short in-order jitter",
			Config{Loss: 0.005, Delay: 30 * time.Millisecond, Jitter: 5 * time.Millisecond}},
		{"wifi-congested", "busy Wi-Fi: heavy-tailed queueing delay with head-of-line blocking, some loss, occasional reordering",
			Config{Loss: 0.015, Delay: 20 * time.Millisecond, Jitter: 25 * time.Millisecond, JitterDist: LogNormal,
				ReorderProb: 0.01, ReorderDelay: 40 * time.Millisecond}},
		{"3g-poor", "weak 3G: 5% loss in short bursts, long delay, 200 kbit/s with a deep buffer",
			Config{Burst: &GilbertElliott{PGoodToBad: 0.02, PBadToGood: 0.25, LossGood: 0.01, LossBad: 0.55},
				Delay: 120 * time.Millisecond, Jitter: 40 * time.Millisecond,
				RateBps: 200_000, QueueBytes: 8000}},
		{"edge-bursty", "EDGE in a fade: 10% loss in half-second outages, 300 ms delay, 100 kbit/s",
			Config{Burst: &GilbertElliott{PGoodToBad: 0.005, PBadToGood: 0.04, LossGood: 0, LossBad: 0.9},
				Delay: 300 * time.Millisecond, Jitter: 60 * time.Millisecond,
				RateBps: 100_000, QueueBytes: 6000}},
		{"loss-10", "10% independent random loss, nothing else", Config{Loss: 0.10}},
		{"loss-20", "20% independent random loss, nothing else", Config{Loss: 0.20}},
		{"jitter-30", "50 ms delay with normal jitter σ = 30 ms that may reorder; no loss",
			Config{Delay: 50 * time.Millisecond, Jitter: 30 * time.Millisecond, Reorder: true}},
		{"duplicate-5", "5% of packets arrive twice, the copy 1 ms later", Config{Duplicate: 0.05}},
		{"reorder-5", "5% of packets held back 50 ms, behind the next two at 20 ms spacing",
			Config{ReorderProb: 0.05, ReorderDelay: 50 * time.Millisecond}},
	}
}

// Profile returns the profile called name.
func Profile(name string) (Config, bool) {
	for _, p := range Profiles() {
		if p.Name == name {
			return p.Config, true
		}
	}
	return Config{}, false
}

// Table renders the profiles as a markdown table for the docs.
func Table() string {
	var b strings.Builder
	b.WriteString("| name | loss | bursts | delay | jitter | reorder | dup | rate | description |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range Profiles() {
		c := p.Config
		bursts := "–"
		if g := c.Burst; g != nil {
			bursts = fmt.Sprintf("GE p=%s r=%s k=%s h=%s: %s mean, bad runs of %.3g",
				pct(g.PGoodToBad), pct(g.PBadToGood), pct(g.LossGood), pct(g.LossBad), pct(g.MeanLoss()), g.MeanBadRun())
		}
		jitter := "–"
		if c.Jitter > 0 {
			jitter = c.Jitter.String() + " " + c.JitterDist.String()
		}
		var reorder []string
		switch {
		case c.Reorder && c.Jitter > 0:
			reorder = append(reorder, "by jitter")
		case !c.Reorder && c.Jitter > 0:
			reorder = append(reorder, "fifo")
		}
		if c.ReorderProb > 0 {
			reorder = append(reorder, pct(c.ReorderProb)+" +"+c.ReorderDelay.String())
		}
		rate := "–"
		if c.RateBps > 0 {
			rate = strconv.Itoa(c.RateBps/1000) + " kbit/s"
			if c.QueueBytes > 0 {
				rate += fmt.Sprintf(", %d B queue", c.QueueBytes)
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			p.Name, dash(pct(c.Loss)), bursts, dash(c.Delay.String()), jitter,
			dash(strings.Join(reorder, ", ")), dash(pct(c.Duplicate)), rate, p.Description)
	}
	return b.String()
}

// pct formats a probability as a percentage.
func pct(p float64) string {
	if p == 0 {
		return "0%"
	}
	return strconv.FormatFloat(p*100, 'g', 3, 64) + "%"
}

// dash stands "–" in for an empty or zero cell.
func dash(s string) string {
	if s == "" || s == "0%" || s == "0s" {
		return "–"
	}
	return s
}
