// Package mixer is the middle of handsup's 20 ms tick: it takes each
// source's decoded frame, measures its level (RFC 6464 dBov), keeps only the
// N loudest sources (with a hangover so speakers do not flap), sums them once
// in float32, and gives every output its mix-minus as total − own: O(sources),
// not O(sources²). Each output passes a Limiter of its own, so loud rooms are
// clipped cleanly instead of wrapping around.
//
// A Mixer knows nothing of rooms or participants: the caller owns the
// Sources and the Limiters and calls Mix once per tick, then MixMinus or Room
// once per distinct output. Nothing allocates per tick.
package mixer
