// Package tsm stretches and compresses decoded audio in time without
// changing its pitch, one pitch period at a time: the technique of WebRTC
// NetEQ's accelerate and preemptive expand (waveform-similarity
// overlap-add, WSOLA, on a pitch-synchronous lag).
//
// Accelerate removes one period from the start of a block of PCM;
// PreemptiveExpand inserts one. Each looks for the lag, between 2.5 and
// 15 ms, at which the block's first period best matches the next
// (normalised cross-correlation, searched at 6 kHz, refined at 48 kHz),
// and acts only where the signal is periodic enough (the correlation
// reaches the threshold the caller gives, DefaultThreshold for NetEQ's
// 0.9) or quiet: otherwise it leaves the block alone and the caller tries
// again on the next one. The two periods are cross-faded over one period,
// so the waveform stays continuous at both ends.
//
// The functions work in place on 48 kHz mono int16 samples, allocate
// nothing, and do a bounded amount of work: the search reads at most
// 2 × MaxPeriod samples whatever the block's length.
package tsm
