// Package capacity measures what the handsup engine costs under load, the
// runner behind cmd/handsup-bench: Run builds identical rooms of speakers
// (talking ones play pre-encoded speech-like voices from bench/signal,
// silent ones send Opus DTX as WebRTC does) and listeners whose sinks count
// bytes, drives one engine in real time, and reports the tick's wall time,
// the process's CPU per tick against the codec floor (libopus alone on the
// same work), what one listener costs, and heap allocations per tick.
package capacity
