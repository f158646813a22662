// Package rules holds handsup's Prometheus rules, as YAML beside this
// file: recording.yml (the dashboard's and the alerts' heavy expressions)
// and alerts.yml (what pages someone), with alerts_test.yml, promtool's
// unit tests of every alert. The package's Go test runs `promtool check
// rules` and `promtool test rules` on them, so `make test` does.
// Files embeds the two rule files for tools that install them.
// docs/operations.md says what each alert means and what to do about it.
package rules
