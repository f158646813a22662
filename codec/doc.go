// Package codec wraps libopus for handsup's tick: 48 kHz mono PCM in 20 ms
// frames, an Encoder whose settings change while it runs, a Decoder that
// decodes packets of any Opus duration (mixing stereo down to mono), recovers
// a lost frame from the next packet's in-band FEC, and conceals a lost frame.
//
// ParseTOC reads an Opus packet's table-of-contents byte (RFC 6716 §3.1) in
// pure Go, so the jitter buffer knows a packet's duration without decoding it.
//
// Encoders and decoders are not safe for concurrent use: each has one owner.
// Neither allocates per frame.
package codec
