//go:build !linux

package capacity

import "time"

// threadCPUTime falls back to the process's CPU time where there is no
// per-thread figure; while the listener cost is timed the process does
// little else.
func threadCPUTime() time.Duration { return cpuTime() }
