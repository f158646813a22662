// Package sim holds what bench's two simulations, the capacity runner
// (bench/capacity) and the listening-quality runs (bench/quality), share
// about their simulated clients and their reports: the RTP header a client
// writes, how often a client in DTX still sends, a speaker's pre-encoded
// stream and the sender that plays it as a WebRTC client would (Stream,
// Sender; bench/e2e's speakers play them too), the seeded generator of
// SSRCs, sequence numbers and link seeds, and the rounding of figures.
package sim
