// Package jitter is handsup's jitter buffer: one Buffer per incoming Opus
// stream, between the network, which pushes packets as they arrive, and
// the tick, which pops what to play every 20 ms. It follows WebRTC's
// NetEQ in a small package that allocates nothing after New.
//
// Push takes an RTP packet and its arrival time; Pop takes the play-out
// time and answers with a Frame saying what to play next: decode a
// payload, recover a lost frame from the next packet's in-band FEC,
// conceal, or play silence (the stream has not started, or the sender is
// in a DTX pause, which is not a loss). Both take the time explicitly, so
// the buffer runs on any clock and tests repeat exactly; Push and Pop may
// be called from different goroutines.
//
// The target delay is the 97th percentile of each packet's delay relative
// to the fastest of the last two seconds, in 5 ms buckets whose old weight
// fades per packet (20 ms buckets for a Buffer used alone, which steers by
// whole frames), plus the frame being played, plus up to
// Config.ExtraDelay once it is above the floor; it starts at
// Config.StartDelay and stays between MinDelay and MaxDelay, rises at
// once and falls at most 200 ms a second (so stretching can follow it),
// and on a lossy link it keeps the next packet in hand so its FEC can
// rebuild a loss. A Player steers its playout level (how far behind the
// fastest packet it plays, Stats.PlayoutLevel) into a band just above the
// target by time-stretching the decoded audio one pitch period at a time
// (package tsm, NetEQ's accelerate and preemptive expand), and stretches
// what it holds rather than conceal when the next packet is
// late; a Buffer used alone drops or inserts a frame, preferably where
// the audio is quiet (MarkQuiet). Packets of any Opus duration (2.5 to 120 ms)
// are placed by their TOC, without decoding; reordering, duplicates,
// sequence and timestamp wrap-around, SSRC changes and large jumps are
// handled and counted.
//
// Stats reports the counters under W3C webrtc-stats names
// (packetsReceived, packetsLost, jitterBufferDelay, concealedSamples,
// fecPacketsReceived and the rest), so they read as a browser's would.
package jitter
