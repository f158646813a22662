// Package engine runs handsup's live audio rooms: an Engine holds Rooms, a
// Room holds Participants, and one engine clock ticks every room every 20 ms
// on a small pool of workers (no goroutine or timer per room or
// participant); a few clocks share the rooms (Config.Phases), their ticks
// spread over the 20 ms, and a clock without rooms sleeps until one joins.
// Each room's counters split its tick time into building, encoding and
// sending (Counters.BuildTime, EncodeTime, SendTime): which part grew when
// ticks run long. A room's sends run after its lock is released
// (RoomConfig.Send), in parts on several workers when the room is very
// large (SendSplit) or its sends, timed every tick, take one worker most
// of a tick (SplitSendAfter; Counters.SplitSends).
//
// In each tick a room pops one frame from each speaker's jitter buffer,
// decodes (or recovers, or conceals) it, mixes with the mixer package, and
// encodes once per distinct output: one encoder per speaker whose voice is in
// the mix (they hear everyone but themselves) and one shared encoder per
// quality tier in use for everyone else (listeners, muted speakers, quiet
// speakers). Each participant gets its own RTP stream (SSRC, sequence
// numbers, timestamps), continuous through role changes, mutes, tier and
// encoder switches; a listener costs one 12-byte header around the shared
// payload and one call of its Sink.
//
// For weak networks, a participant's receiver reports (ReportReception) move
// it between tiers (by default hi; mid with in-band FEC; low with RED),
// quickly to protect and slowly to relax; participants that take RED get
// each packet with the previous one's audio, from the output's history, at
// no extra encode; NACKs are answered from the same history (Retransmit);
// speakers' RED is unwrapped into their jitter buffers.
//
// Audio comes in through Participant.WriteRTP from any goroutine; the
// engine parses it with pion/rtp into reused structs and drops, with a
// counted reason, what it cannot use. Nothing on the tick's path allocates
// in steady state. The engine knows nothing of HTTP or sockets: a transport
// supplies Sinks and calls WriteRTP.
//
// When a tick runs near its 20 ms, the engine first sheds load: every
// room's encoders drop to a lower Opus complexity (about half the CPU of
// an encode) until the ticks run well within their time again
// (Config.Shed, Stats.Shedding); the streams go on unbroken. A tick whose
// encodes are a small share of its work (a large room's, which is its
// sends) does not count: shedding would not bring it back. Under
// overload the clock skips the ticks it cannot catch up on
// (Engine.Skip); every output stream's timestamps move on over them, so
// receivers conceal a gap and stay on real time. Admission control caps
// rooms, members of a room and of the engine, and can refuse growth while
// ticks near their 20 ms budget (Config.MaxTickLoad).
package engine
