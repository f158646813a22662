// Command handsup-bench measures the handsup engine on synthetic rooms: it
// runs Rooms rooms of Speakers speakers (Active of them talking with
// speech-like voices, the rest silent with DTX) and Listeners listeners in
// real time on one engine, then reports the tick's wall time, the process's
// CPU per tick against the cost of the Opus decodes and encodes alone (the
// codec floor), what each listener costs (with its spread over repeats,
// measured on twin copies of one room whose codec work cancels:
// capacity.ListenerCost), and heap allocations per tick. Then, unless
// -transport-listeners is 0, it compares what a listener costs over the
// engine alone, plain RTP (session/rtpudp to UDP sockets) and WebRTC
// (session/webrtc to pion clients, DTLS-SRTP), all on loopback, in one run
// (capacity.FanOut): per transport, the tick's CPU less its flush per
// listener (ns_per_listener_tick), the flush's sendmmsg per packet, the
// two together, allocations per listener per tick and the packets the
// clients received. It takes the WebRTC clients' connection (a few
// seconds per hundred) and about 10 s more.
//
// Usage:
//
//	handsup-bench [-rooms 1] [-speakers 5] [-active 3] [-listeners 10000]
//	              [-duration 10s] [-seed 1] [-transport-listeners 200]
//	              [-json] [-plot file.png|file.svg] [-cpuprofile file]
//
// With -json it prints exactly one JSON object on stdout (the fields of
// capacity.Result, the transport comparison under "transports");
// otherwise a table, the transport comparison after it. -listeners takes a
// comma-separated list (1000,5000,10000) to run one measurement per count,
// a sweep: a table each and a summary (with -json, an array of the
// objects). -plot draws the tick-time distribution of each run and, for a
// sweep, CPU per tick against listeners (bench/plot). A run longer than
// 3 s prints a progress line on stderr every 2 s: the phase, the time
// elapsed and an estimate of the time left. Bad flags exit with status 2, an
// interrupt (SIGINT, SIGTERM) stops the run and exits with status 130.
//
// Listening quality on weak networks (docs/weak-networks.md):
//
//	handsup-bench -impair PROFILE [-duration 60s] [-seed 1] [-jitter-extra 0] [-json]
//	handsup-bench -scenario NAME [-duration D] [-seed 1] [-jitter-extra 0] [-read-on-arrival] [-json]
//	handsup-bench -scenario all [-json]
//
// These run in process on a simulated clock, as fast as the codec allows:
// simulated clients send RTP through bench/impair links into one room and
// decode what it sends them through their own links, and each run is
// repeated with every link clean to compare the audio (quality.Run).
// -impair runs the "room" scenario (3 speakers, 2 talking; 4 listeners, 2
// taking RED) with the profile on every link; -scenario names one of
// quality.ScenarioNames, whose links are fixed (only "room" takes -impair);
// -scenario all runs the acceptance scenarios and prints one row per target
// with the measured figure and PASS or FAIL. -duration and -seed, when
// given, override the scenario's; -jitter-extra sets the rooms'
// jitter.Config.ExtraDelay (the delay-for-concealment trade: see
// docs/weak-networks.md); -read-on-arrival hands each uplink packet to
// the engine as it arrives (as WebRTC does) rather than at the start of
// the next tick (as the server's plain RTP transport reads them). A FAIL
// does not change the exit status.
// Past 3 s they print a progress line on stderr every 2 s: the simulated
// time done, and the time left to simulate; then that the listeners'
// audio is being compared with the clean runs.
//
// Over real UDP (docs/performance.md):
//
//	handsup-bench -e2e [-listeners 800 | -sweep 800,1600,3200,6400,10000]
//	              [-rooms 1] [-speakers 3] [-active 3] [-repeats 3]
//	              [-duration 10s] [-warmup 2s] [-join-rate 0] [-send-split 0] [-phases 0]
//	              [-no-floor | -paired] [-floor-reader] [-floor-fragmentable]
//	              [-cpuprofile file] [-json]
//
// -e2e runs the server (engine, session layer, session/rtpudp) in a
// process of its own, started again from this executable, sending to
// listeners on loopback whose every packet the command receives and
// counts, and back to back with it the floor, a bare sendmmsg sender to
// the same listeners, each step repeated (bench/e2e), and after each pair
// the codec floor: libopus timed alone on the rooms' calls, at the
// server's decodes and encodes a tick. It prints, per listener count,
// each sender's CPU and the ratio, CPU per datagram, the codec floor and
// the server's CPU over it plus the floor's,
// packets per listener per second, the share of listeners under 98% and
// 99.9% of their packets, inter-arrival p99, tick work and lateness,
// overruns and skipped ticks, the client's own CPU, then where packets
// were lost, run by run. Here -cpuprofile profiles the server's measured
// window (the first repeat of each step).
//
// -paired runs the server and the floor at once in each repeat, in one
// window, each to listeners of its own on ports of their own: on a
// shared machine whose speed drifts from one run to the next, the ratio
// of two figures taken in the same window is steadier than that of two
// runs back to back, though each sender then shares the machine with the
// other, which costs the lean floor more (the paired ratio runs lower):
// use it to compare server builds. Each line also gives the window's
// longest tick, its latest start and the sender's garbage collections.
//
// -cpuprofile profiles the whole process, pre-encoding and the codec floor
// included: focus on the engine (go tool pprof -focus 'engine\.') to see
// the ticks. Go's profiler cannot see the runtime's sysmon thread, which
// runs without a P; per-thread CPU (/proc/PID/task/*/schedstat) or perf
// shows it.
package main
