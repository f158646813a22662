// Package red builds and parses RTP payloads for redundant audio data
// (RED, RFC 2198): a primary Opus frame preceded by copies of earlier ones,
// so a receiver that lost a packet finds its audio in the next. Append and
// Parse work on payloads; an Unwrapper turns a received RED packet back
// into its primary and the earlier Opus packets its blocks copy, ready for
// a jitter buffer. It knows nothing of rooms or sockets.
package red
