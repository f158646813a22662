// Package rtpudp carries handsup's RTP and RTCP over plain UDP, the way
// ffmpeg, GStreamer and Janus AudioBridge's plain-RTP participants speak.
//
// One socket serves every participant. Incoming datagrams are
// demultiplexed by source address (the address a participant declared when
// it joined); RTP and RTCP share the port (RFC 5761). A second socket on
// the RTP port + 1 (RFC 3550's default) takes the RTCP of clients that do
// not multiplex, such as ffmpeg, from a participant's declared addresses
// and the port above each (Config.NoRTCPPort turns it off).
//
// A client behind a NAT does not know its public address: AddLatchingPeer
// declares it by a join SSRC instead, and the transport learns its
// address from the first packet that presents that SSRC, following it
// (at a bounded rate) when the NAT rebinds. Outgoing packets are
// gathered per room during a tick and leave in batches through sendmmsg, a
// listener's packet as two buffers — its own 12-byte header and the room's
// shared payload — so the payload is never copied per listener. Each
// listener's destination is prepared for sendmmsg once, when it joins.
// Nothing is sent while the room's lock is held: the tick queues a whole
// tick's packets in the room's Batch, and the room's engine.RoomConfig.Send
// (Batch.SendPart, split across workers for a large room) and AfterTick
// (Batch.Flush) send them once the lock is released.
//
// The RTP socket is a blocking descriptor outside Go's netpoller: in the
// netpoller, each datagram sent would wake the poller for nothing (the
// kernel signals the socket writable as each leaves). Its reader waits in
// the netpoller on an epoll descriptor of its own that watches the socket
// for input only, and reads with recvmmsg without waiting: no thread sits
// in a system call, which would keep waking the runtime's monitor thread.
// While a large room's batch leaves, the socket is taken out of that
// epoll descriptor, so the kernel does not walk its wait queue for every
// datagram sent; input that arrives meanwhile is reported when it is put
// back. The socket sets the don't-fragment bit (IP_PMTUDISC_PROBE), so the
// kernel draws no IP identifier per datagram; audio datagrams are far
// below any MTU, and the engine keeps RED payloads within 1,200 bytes.
// docs/performance.md has the measurements. This makes the package
// Linux-only.
//
// Transport.Drain reads what waits on the socket at once; the server calls
// it at the start of each tick (engine.Config.BeforeTick) and, with
// Config.ReadOnDrain, nothing else reads the RTP socket: each packet is
// stamped at the first tick that can play it, which is what a jitter
// buffer's target has to cover, and no thread wakes for each arrival.
//
// Addresses that would turn the server against its users are refused,
// counted and logged: its own sockets, another participant's, unspecified,
// multicast and broadcast ones. A receive address on another host than the
// participant's source gets a few packets until a datagram comes from it,
// so that a join cannot aim a stream at a host that never asked.
package rtpudp
