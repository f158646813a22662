package rules

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// promtool finds promtool: make deps installs it (Debian's prometheus
// package); in CI its absence fails the test.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is missing: make deps installs it (Debian package prometheus)")
		}
		t.Skip("promtool is missing (make deps installs it); skipping")
	}
	return p
}

func run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
}

// TestRulesCheck: the rule files parse and their expressions are valid
// PromQL.
func TestRulesCheck(t *testing.T) {
	run(t, "check", "rules", "recording.yml", "alerts.yml")
}

// TestAlertUnitTests runs promtool's unit tests of the alerts, and checks
// that each alert of alerts.yml has one that expects it silent and one
// that expects it firing.
func TestAlertUnitTests(t *testing.T) {
	alerts, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile("alerts_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`(?m)^\s*- alert: (\w+)`).FindAllStringSubmatch(string(alerts), -1)
	if len(names) == 0 {
		t.Fatal("no alerts in alerts.yml")
	}
	for _, n := range names {
		cases := regexp.MustCompile(`(?m)^\s*alertname: `+n[1]+`\n\s*exp_alerts:(.*)$`).FindAllStringSubmatch(string(tests), -1)
		silent, firing := false, false
		for _, c := range cases {
			if strings.TrimSpace(c[1]) == "[]" {
				silent = true
			} else {
				firing = true
			}
		}
		if !silent || !firing {
			t.Errorf("alert %s: unit tests silent %v, firing %v; want both", n[1], silent, firing)
		}
	}
	run(t, "test", "rules", "alerts_test.yml")
}
