// Package red builds and parses RTP payloads for redundant audio data
// (RED, RFC 2198): a primary Opus frame preceded by copies of earlier ones,
// so a receiver that lost a packet finds its audio in the next. It knows
// nothing of rooms or sockets.
package red
