package procs

import (
	"os"
	"runtime"
)

// SpareProcessor sets the Go runtime up for an engine of workers workers
// (0 or less: GOMAXPROCS) and returns that number, for engine.Config.Workers:
// it raises GOMAXPROCS to one more than the workers, unless the GOMAXPROCS
// environment variable already decides. Call it once, before the engine
// starts.
//
// Why: every encode and decode is a cgo call of 25 to 150 µs. While every
// P is inside such a call, the runtime's monitor thread wakes every 20 µs
// to take Ps back from them, thousands of times a tick; with one P always
// free it leaves them alone. Measured with cmd/handsup-bench (20 rooms, 5
// talking speakers each, 2 cores): process CPU per tick went from 1.12–1.29
// to 1.09–1.11 times the codec floor. The spare P costs nothing while idle.
func SpareProcessor(workers int) int {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(workers + 1)
	}
	return workers
}
