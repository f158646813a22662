// Package bench holds handsup's benchmarks and the audio its tests use, in
// sub-packages by concern:
//
//   - bench/signal: synthetic, deterministic speakers (speech-like voices,
//     tones, gated generators) and the analysis that checks audio (the
//     Goertzel detector that tells who hears whom, alignment, SNR). It knows
//     nothing of the engine; the engine's tests use it.
//   - bench/capacity: the room runner behind cmd/handsup-bench: rooms of
//     speakers and listeners on one engine in real time, CPU per tick
//     against the codec floor, what one listener costs.
//   - bench/quality: the weak-network listening-quality simulation behind
//     cmd/handsup-bench -impair and -scenario, and its acceptance targets.
//   - bench/impair: the network impairment lab (loss, bursts, jitter,
//     reordering, duplication, rate limits) and its named profiles.
//
// This package itself has no code.
package bench
