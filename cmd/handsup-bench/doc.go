// Command handsup-bench measures the handsup engine on synthetic rooms: it
// runs Rooms rooms of Speakers speakers (Active of them talking with
// speech-like voices, the rest silent with DTX) and Listeners listeners in
// real time on one engine, then reports the tick's wall time, the process's
// CPU per tick against the cost of the Opus decodes and encodes alone (the
// codec floor), what each listener costs, and heap allocations per tick.
//
// Usage:
//
//	handsup-bench [-rooms 1] [-speakers 5] [-active 3] [-listeners 10000]
//	              [-duration 10s] [-seed 1] [-json] [-cpuprofile file]
//
// With -json it prints exactly one JSON object on stdout (the fields of
// bench.Result); otherwise a table. Bad flags exit with status 2, an
// interrupt (SIGINT, SIGTERM) stops the run and exits with status 130.
//
// -cpuprofile profiles the whole process, pre-encoding and the codec floor
// included: focus on the engine (go tool pprof -focus 'engine\.') to see
// the ticks. Go's profiler cannot see the runtime's sysmon thread, which
// runs without a P; per-thread CPU (/proc/PID/task/*/schedstat) or perf
// shows it.
package main
