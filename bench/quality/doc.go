// Package quality simulates what listeners hear on weak networks, the
// runs behind cmd/handsup-bench -impair and -scenario: a Scenario is one
// room on a simulated clock whose speakers send through their own
// bench/impair uplinks and whose listeners receive through their own
// downlinks, decoding with their own jitter buffers (and RED, for those
// who take it). Run runs it twice, impaired and with every link
// clean, and compares what each listener heard (bench/signal's SNR
// measures) along with loss, FEC, RED, jitter-buffer and tier figures.
// The acceptance scenarios (AcceptanceScenarios) carry targets, reported
// as Checks.
package quality
