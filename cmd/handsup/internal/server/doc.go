// Package server is the handsup server: it wires the engine to one UDP
// socket for RTP and RTCP (session/rtpudp), serves the HTTP control API under
// /v1 with its OpenAPI document, streams room events as Server-Sent Events,
// checks admin tokens and signed invites, and exports Prometheus metrics.
package server
