// Package mmsg gathers UDP datagrams and sends them with as few
// sendmmsg(2) calls as fit: what a room's tick sends to its listeners
// leaves in a handful of system calls instead of one per listener. The
// transports under session (rtpudp, webrtc) share it.
package mmsg
