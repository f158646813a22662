// Package capacity measures what the handsup engine costs under load, the
// runner behind cmd/handsup-bench: Run builds identical rooms of speakers
// (talking ones play pre-encoded speech-like voices from bench/signal,
// silent ones send Opus DTX as WebRTC does) and listeners whose sinks count
// bytes, drives one engine in real time, and reports the tick's wall time,
// the process's CPU per tick against the codec floor (libopus alone on the
// same work), what one listener costs, and heap allocations per tick.
//
// With Config.TransportListeners it also measures what a listener costs
// over each transport, side by side in one run (FanOut): the engine alone,
// plain RTP through session/rtpudp to UDP sockets, and WebRTC through
// session/webrtc to pion clients (internal/webrtctest) with DTLS-SRTP, all
// on loopback, each on twin rooms as ListenerCost, the tick's user-space
// work and its sendmmsg flush timed apart.
package capacity
