// Package e2e is handsup's end-to-end benchmark over real UDP, the runner
// behind cmd/handsup-bench -e2e: one room, speakers sending Opus/RTP, N
// listeners on loopback whose every packet is counted, and beside it the
// floor, a bare sender that sends the same datagrams to the same listeners
// with sendmmsg and nothing else: what the kernel costs.
//
// Each sender runs in a process of its own (the same executable, which
// calls ChildMain first), so that its CPU time is its own: the handsup
// server is the engine, the session layer and session/rtpudp wired as
// cmd/handsup wires them. The client (this process) plays the speakers
// and receives for every listener on a few sockets: each listener has an
// address of its own, 127.10.b.c, on one of the sockets' ports, and
// recvmmsg with IP_PKTINFO tells them apart, so the client costs less
// than the senders it measures and reports its own CPU.
//
// Run repeats handsup and the floor back to back, alternating which goes
// first, then times the codec floor (libopus alone on the rooms' calls,
// in a child of its own), and reports for each: the sender's CPU, the
// ratio between the two, handsup's over the codec floor plus the floor's,
// packets per listener per second, the share of listeners that got
// under 98% and 99.9% of their packets, the inter-arrival p99, tick
// lateness, overruns and skipped ticks, where packets were lost (send
// errors, the receivers' SO_RXQ_OVFL drops, /proc/net/snmp's buffer
// errors), and where handsup's ticks went: the wall time its rooms spent
// building, encoding and sending (engine.Counters.BuildTime, EncodeTime,
// SendTime) in % of a core, beside its CPU.
package e2e
