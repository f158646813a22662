package jitter

import "time"

// Kind says what the mixer plays for the next stretch of time.
type Kind uint8

const (
	// Silence: play silence. The stream has not started yet, or is in a
	// DTX pause (a timestamp gap with consecutive sequence numbers, or an
	// empty buffer after a DTX packet). Not a loss; counts no concealment.
	Silence Kind = iota
	// Decode: decode Frame.Payload and play all of it (Frame.Samples long).
	Decode
	// DecodeFEC: the frame was lost; recover Frame.Samples from the in-band
	// FEC of Frame.Payload, the packet that follows the lost one.
	DecodeFEC
	// Conceal: the frame is missing; play Frame.Samples of concealment (PLC).
	Conceal
)

var kindNames = [...]string{"silence", "decode", "decode_fec", "conceal"}

// String names the kind in lower case, as in logs and metric labels.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Frame is one answer of Pop.
type Frame struct {
	Kind    Kind
	Samples int    // samples at 48 kHz this answer covers
	Payload []byte // for Decode and DecodeFEC; valid until the next Pop
	Fading  bool   // concealment has gone on so long it should fade out
}

// Config holds a buffer's settings. Its zero value works: every zero field
// takes the default written beside it.
type Config struct {
	MinDelay   time.Duration // floor of the target delay; default 20 ms
	MaxDelay   time.Duration // ceiling of the target delay; default 400 ms
	StartDelay time.Duration // target before any arrival statistics; default 80 ms
	Capacity   int           // packets held at most; default 64 (more are dropped, oldest first)
	// ExtraDelay raises the target the arrival statistics give by up to
	// this much, by no more than that target's distance above MinDelay:
	// a clean link keeps its floor, a jittery one trades delay for fewer
	// late packets to conceal; default 0. At 60 ± 30 ms of jitter 8 ms
	// halved the frames concealed (docs/weak-networks.md).
	ExtraDelay time.Duration
	// ResetJump is the timestamp jump, forward or back, treated as a new
	// stream; default 3 s. A sender's pause that long restarts the buffer
	// too, which costs nothing: it was empty.
	ResetJump time.Duration
	// SuspectJump is how far a packet's timestamp may be from the
	// stream's, beyond what its sequence number explains, before the
	// packet is held aside until the next one confirms the jump (see
	// Outlier); default 1 s. The first packet after a longer DTX pause
	// waits for the second.
	SuspectJump time.Duration
}
