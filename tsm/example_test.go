package tsm_test

import (
	"fmt"
	"math"

	"github.com/handsup-audio/handsup/tsm"
)

// A 30 ms block of a 160 Hz voice's buzz (period 300 samples at 48 kHz)
// loses one period to Accelerate, and a 20 ms block gains one from
// PreemptiveExpand, which writes into the block's spare capacity.
func Example() {
	buzz := func(n, extra int) []int16 {
		pcm := make([]int16, n, n+extra)
		for i := range pcm {
			pcm[i] = int16(6000 * math.Sin(2*math.Pi*160*float64(i)/48000))
		}
		return pcm
	}

	pcm := buzz(1440, 0)
	n, r := tsm.Accelerate(pcm, 0, tsm.DefaultThreshold)
	fmt.Printf("accelerate: %d → %d samples (period %d, correlation %.2f)\n", len(pcm), n, r.Period, r.Correlation)

	pcm = buzz(960, tsm.MaxPeriod)
	n, r = tsm.PreemptiveExpand(pcm, 0, tsm.DefaultThreshold)
	fmt.Printf("expand: %d → %d samples (period %d)\n", len(pcm), n, r.Period)
	// Output:
	// accelerate: 1440 → 1140 samples (period 300, correlation 1.00)
	// expand: 960 → 1260 samples (period 300)
}
