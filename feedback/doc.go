// Package feedback is handsup's RTCP: what it tells speakers about their
// incoming streams, what it learns from every participant about the
// streams it sends, and the sender reports that make round-trip times
// measurable. It runs no goroutine per listener.
//
// Speakers: a SpeakerSession per speaker's incoming stream runs
// pion/interceptor's receiver-report generator and stats recorder without
// pion/webrtc, and keeps a log of the packets missing. It binds on the
// speaker's first RTP packet (OnRTP), takes the speaker's SRs (OnRTCP) and
// sends receiver reports (every second, from the report interceptor's
// goroutine and ticker) and NACKs (when its caller polls it, on the
// caller's clock: session.Manager polls every speaker every 50 ms on one
// goroutine) through SpeakerConfig.WriteRTCP. NACKs are worth sending only
// when a retransmission beats the jitter buffer's target delay; SetNACK and
// UpdateNACK switch them.
//
// Everyone: ParseListenerRTCP reads a participant's compound RTCP (report
// blocks, NACKs, BYE) into a reusable ListenerReport, validating framing
// so that malformed datagrams give errors, not panics, and a
// ListenerTracker per participant keeps smoothed loss, jitter and RTT.
// Neither runs a goroutine; in steady state neither allocates.
//
// Sender reports: AppendSenderReport writes an RFC 3550 SR into a caller's
// buffer, and a SenderReportScheduler per room, called once per tick,
// spreads SRs over all the room's output streams (default: each once every
// 5 s; 10,000 listeners at 20 ms ticks is 40 SRs a tick), recording each
// SR's NTP time in the stream's SRHistory so the participant's next report
// yields RTT = A − LSR − DLSR (RFC 3550 §6.4.1).
//
// Package session wires all of this to participants over any transport
// (it routes each member's RTCP to its ListenerTracker, the engine and its
// SpeakerSession, and runs a SenderReportScheduler per room); an embedder
// with its own transport uses session rather than this package directly.
package feedback
