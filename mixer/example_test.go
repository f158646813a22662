package mixer_test

import (
	"fmt"
	"slices"

	"github.com/handsup-audio/handsup/mixer"
)

// Two speakers in one tick. Constant frames make the arithmetic visible:
// the room hears their sum, each speaker its mix-minus, the mix without
// itself.
func Example() {
	m := mixer.New(mixer.Config{}) // 20 ms frames, top 4
	alice, bob := m.AddSource(), m.AddSource()

	// Each tick: fill every source's frame, then Mix once.
	alice.PCM = slices.Repeat([]int16{1000}, m.Config().FrameSamples)
	bob.PCM = slices.Repeat([]int16{2000}, m.Config().FrameSamples)
	alice.Present, bob.Present = true, true
	m.Mix()
	fmt.Println("mixed:", m.MixedCount(), "levels:", alice.Level(), bob.Level())

	// Then one output per distinct listener, each with its own limiter.
	var roomLim, aliceLim, bobLim mixer.Limiter
	out := make([]int16, m.Config().FrameSamples)
	m.Room(&roomLim, out)
	fmt.Println("the room hears", out[0])
	m.MixMinus(alice, &aliceLim, out)
	fmt.Println("alice hears", out[0])
	m.MixMinus(bob, &bobLim, out)
	fmt.Println("bob hears", out[0])
	// Output:
	// mixed: 2 levels: 30 24
	// the room hears 3000
	// alice hears 2000
	// bob hears 1000
}

// Two loud speakers sum to 60000, past int16. The limiter does not let the
// sum wrap around: in the first tick it ramps its gain down across the
// frame (no step, so no click) while its final clamp catches the start;
// from the next tick the whole frame sits at its ceiling, 32000.
func ExampleLimiter() {
	m := mixer.New(mixer.Config{})
	n := m.Config().FrameSamples
	var sources []*mixer.Source
	for range 2 {
		s := m.AddSource()
		s.PCM = slices.Repeat([]int16{30000}, n)
		sources = append(sources, s)
	}

	var lim mixer.Limiter
	out := make([]int16, n)
	for tick := range 2 {
		for _, s := range sources {
			s.Present = true
		}
		m.Mix()
		m.Room(&lim, out)
		fmt.Printf("tick %d: from %d to %d, %d samples clamped so far\n", tick, out[0], out[n-1], lim.Clipped)
	}
	// Output:
	// tick 0: from 32767 to 31998, 933 samples clamped so far
	// tick 1: from 32000 to 32000, 933 samples clamped so far
}
