// Package server is the handsup server: it runs the engine's rooms through
// the session layer (package session) over one UDP socket for RTP and RTCP
// (session/rtpudp), as any embedder would, and adds only what is HTTP's:
// it serves the control API under
// /v1 with its OpenAPI document, streams room events as Server-Sent Events,
// checks admin tokens and signed invites, and exports Prometheus metrics.
package server
