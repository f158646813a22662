package fakeclock_test

import (
	"fmt"
	"time"

	"github.com/handsup-audio/handsup/internal/fakeclock"
)

// A Clock moves only when the test moves it; pass its Now where code
// takes a func() time.Time.
func Example() {
	clock := fakeclock.New(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC))
	var now func() time.Time = clock.Now // as engine.Config{Now: clock.Now}

	start := now()
	clock.Advance(20 * time.Millisecond)
	fmt.Println(now().Sub(start))

	clock.Set(start.Add(time.Hour))
	fmt.Println(now().Format(time.TimeOnly))
	// Output:
	// 20ms
	// 13:00:00
}
