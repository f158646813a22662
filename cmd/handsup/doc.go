// Command handsup is the handsup audio-room server: Opus over plain RTP/UDP
// in, one mixed Opus/RTP stream per participant out, rooms driven through an
// HTTP API, Prometheus metrics at /metrics.
//
// Every flag has a HANDSUP_* environment variable (the flag wins); run
// handsup -h for the list. With -demo-room it opens a room at start and
// prints how to speak and listen in it with ffmpeg.
package main
