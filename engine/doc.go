// Package engine runs handsup's live audio rooms: an Engine holds Rooms, a
// Room holds Participants, and one engine clock ticks every room every 20 ms
// on a small pool of workers (no goroutine or timer per room or participant).
//
// In each tick a room pops one frame from each speaker's jitter buffer,
// decodes (or recovers, or conceals) it, mixes with the mixer package, and
// encodes once per distinct output: one encoder per speaker whose voice is in
// the mix (they hear everyone but themselves) and one shared encoder for
// everyone else (listeners, muted speakers, quiet speakers). Each participant
// gets its own RTP stream (SSRC, sequence numbers, timestamps), continuous
// through role changes, mutes and encoder switches; a listener costs one
// 12-byte header around the shared payload and one call of its Sink.
//
// Audio comes in through Participant.WriteRTP from any goroutine; the
// engine parses it with pion/rtp into reused structs and drops, with a
// counted reason, what it cannot use. Nothing on the tick's path allocates
// in steady state. The engine knows nothing of HTTP or sockets: a transport
// supplies Sinks and calls WriteRTP.
package engine
