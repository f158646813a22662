package impair_test

import (
	"fmt"
	"time"

	"github.com/handsup-audio/handsup/bench/impair"
)

// How many packets of a jittery link arrive after a fixed playout delay:
// the least a jitter buffer must conceal at that delay, as no buffer does
// better on independent delays than a fixed one of the same mean. Here
// for the real-time test's profiles (issue 10: the added delay at most the
// jitter's p95 + 20 ms), 30 minutes of 20 ms packets each, the playout at
// that limit and 10 or 20 ms past it: the delay is added to a clean
// room's, whose own buffer (its 20 ms floor) the impaired room's budget
// gains in part (docs/weak-networks.md).
func Example_lateAtAFixedDelay() {
	for _, p := range []struct {
		delay, jitter time.Duration
		reorder       bool
	}{
		{60 * time.Millisecond, 30 * time.Millisecond, true},
		{60 * time.Millisecond, 30 * time.Millisecond, false},
		{80 * time.Millisecond, 40 * time.Millisecond, true},
		{80 * time.Millisecond, 40 * time.Millisecond, false},
	} {
		l := impair.New(impair.Config{Delay: p.delay, Jitter: p.jitter, Reorder: p.reorder, Seed: 1})
		t0 := time.Unix(0, 0)
		l.SetEpoch(t0)
		const n = 90000 // 30 minutes
		var delays []time.Duration
		note := func(pkt []byte, at time.Time) {
			k := int(pkt[0])<<16 | int(pkt[1])<<8 | int(pkt[2])
			delays = append(delays, at.Sub(t0.Add(time.Duration(k)*20*time.Millisecond)))
		}
		for i := range n {
			sent := t0.Add(time.Duration(i) * 20 * time.Millisecond)
			l.Send([]byte{byte(i >> 16), byte(i >> 8), byte(i)}, sent)
			l.Deliver(sent, note)
		}
		l.Deliver(t0.Add(time.Hour), note)
		limit := p.delay + time.Duration(1.6449*float64(p.jitter)) + 20*time.Millisecond
		order := "in order"
		if p.reorder {
			order = "may overtake"
		}
		fmt.Printf("%v ± %v, %-12s late at p95 + 20 ms (%v):", p.delay, p.jitter, order, limit.Round(100*time.Microsecond))
		for _, extra := range []time.Duration{0, 10 * time.Millisecond, 20 * time.Millisecond} {
			late := 0
			for _, d := range delays {
				if d > limit+extra {
					late++
				}
			}
			fmt.Printf(" +%v %.2f%%", extra, 100*float64(late)/float64(len(delays)))
		}
		fmt.Println()
	}
	// Output:
	// 60ms ± 30ms, may overtake late at p95 + 20 ms (129.3ms): +0s 1.00% +10ms 0.41% +20ms 0.14%
	// 60ms ± 30ms, in order     late at p95 + 20 ms (129.3ms): +0s 1.15% +10ms 0.46% +20ms 0.15%
	// 80ms ± 40ms, may overtake late at p95 + 20 ms (165.8ms): +0s 1.59% +10ms 0.81% +20ms 0.41%
	// 80ms ± 40ms, in order     late at p95 + 20 ms (165.8ms): +0s 2.08% +10ms 1.03% +20ms 0.50%
}
