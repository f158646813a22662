package rules_test

import (
	"fmt"
	"regexp"

	rules "github.com/handsup-audio/handsup/deploy/prometheus"
)

// Example lists the alerts that ship, from the embedded alerts.yml.
func Example() {
	b, err := rules.Files.ReadFile("alerts.yml")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert: (\w+)`).FindAllSubmatch(b, -1) {
		fmt.Println(string(m[1]))
	}
	// Output:
	// HandsupTicksSkipped
	// HandsupTickOverruns
	// HandsupLoadShedding
	// HandsupTickSlow
	// HandsupListenerLossHigh
	// HandsupSendErrors
	// HandsupNotReady
	// HandsupDown
}
