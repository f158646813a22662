package dashboard_test

import (
	"fmt"

	"github.com/handsup-audio/handsup/deploy/dashboard"
)

// Example builds the dashboard and lists the first panel queries, as a
// test that runs them against Prometheus would.
func Example() {
	b, err := dashboard.JSON()
	if err != nil {
		fmt.Println(err)
		return
	}
	qs, _ := dashboard.Queries(b)
	for _, q := range qs[:2] {
		fmt.Printf("%s: %s\n", q.Panel, q.Expr)
	}
	// Output:
	// Rooms: sum(handsup_rooms{job=~"$job"})
	// Participants by role: sum by (role) (handsup_participants{job=~"$job"})
}
