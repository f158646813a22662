// Package mmsg gathers UDP datagrams and sends them with as few
// sendmmsg(2) calls as fit: what a room's tick sends to its listeners
// leaves in a handful of system calls instead of one per listener. The
// transports under session (rtpudp, webrtc) share it.
//
// It calls sendmmsg itself (golang.org/x/sys/unix) on message headers
// built once: a datagram's destination is a sockaddr prepared once per
// participant (Addr) and copied in, its buffers are pointed at, and
// queueing or sending allocates nothing. The socket is a Go socket, sent
// on through its RawConn (NewQueue), or a blocking descriptor outside Go's
// netpoller, sent on directly, from several goroutines at once if need be
// (NewFDQueue).
package mmsg
