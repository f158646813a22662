package e2e_test

import (
	"context"
	"fmt"
	"time"

	"github.com/handsup-audio/handsup/bench/e2e"
)

// Twenty listeners hear a room over UDP on loopback for a second; the
// floor is left out. (Run starts this executable again as the server:
// TestMain calls e2e.ChildMain first.)
func ExampleRun() {
	res, err := e2e.Run(context.Background(), e2e.Config{
		Listeners: []int{20}, Repeats: 1, NoFloor: true,
		Duration: time.Second, WarmUp: 500 * time.Millisecond,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	r := res.Steps[0].Runs[0]
	fmt.Println(r.Kind, "listeners:", r.Listeners, "heard nothing:", r.Silent)
	// Output:
	// handsup listeners: 20 heard nothing: 0
}
