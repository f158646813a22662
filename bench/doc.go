// Package bench holds what handsup's benchmarks and audio tests share:
// synthetic, deterministic speakers (tones and speech-like voices), the
// Goertzel detector that checks who hears whom on decoded audio, and the
// room runner behind cmd/handsup-bench.
package bench
