// Package impair simulates a bad network path for RTP and RTCP datagrams:
// random and bursty (Gilbert–Elliott) loss, delay with normal or
// heavy-tailed jitter, reordering, duplication and a bandwidth cap with a
// drop-tail queue, optionally only within a window of time.
//
// A Link is one direction of a path. It runs on whatever clock its caller
// passes in, so tests drive it on a simulated clock without sleeping, and
// it is deterministic: the same Config (Seed included) and the same Send
// calls give the same deliveries. A Relay puts a pair of links per client
// on the real clock in front of a real UDP server on loopback; it acts as
// a NAT that rebinds when asked (Rebind) or every so often (RebindEvery):
// the server sees the client's packets come from a new port.
//
// Profiles names realistic settings (clean, lte-good, wifi-congested,
// 3g-poor, edge-bursty) and the exact cases acceptance tests ask for
// (loss-10, loss-20, jitter-30, duplicate-5, reorder-5); Table renders
// them for the docs.
package impair
