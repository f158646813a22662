// Package session runs handsup's participants over transports: it is the
// layer between the engine, which mixes rooms and knows nothing of
// sockets, and a transport (session/rtpudp for plain RTP over UDP; WebRTC
// next), which knows nothing of rooms.
//
// A Manager wraps an engine. Its rooms are engine rooms whose participants
// join with a Link, the transport's handle on one participant: the Link is
// the participant's sink (header plus shared payload out, batched by the
// transport), its RTCP path, and the source of its incoming packets, which
// it hands to the Member that Join binds to it. The session then does what
// every embedder would otherwise write again:
//
//   - RTP from a participant goes to the engine (Participant.WriteRTP) and,
//     while its role contributes, to the RTCP side of its incoming stream
//     (feedback.SpeakerSession: receiver reports, NACKs, statistics), which
//     starts and stops as the participant goes on and off the stage.
//   - RTCP from a participant is parsed once: its receiver reports move it
//     between the room's tiers (Participant.ReportReception), its NACKs are
//     answered from the room's shared history (Participant.Retransmit), and
//     a speaker's sender reports go to its RTCP side.
//   - Every output stream gets a sender report every Config.SRInterval
//     (Manager.Run, or Manager.SendReports with explicit time), so that
//     receiver reports yield round-trip times.
//   - A member that sent RTP or RTCP and then falls silent for
//     Config.IdleTimeout (30 s) is removed with reason "timeout"
//     (Manager.Run, or Manager.Sweep with explicit time); a member that
//     never sent anything is kept, since a receive-only plain-RTP listener
//     cannot prove itself alive. A transport that sees its participant
//     go calls Member.Timeout.
//   - When a participant leaves, for whatever reason, its RTCP side stops
//     and its Link is closed.
//
// State is per room and per member; there is no lock wider than a room, and
// a member's reception and uplink figures are read without one.
// NewCollector exports the manager's RTCP counters to Prometheus.
package session
