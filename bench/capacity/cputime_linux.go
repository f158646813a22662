package capacity

import (
	"syscall"
	"time"
	"unsafe"
)

// clockThreadCPUTime is Linux's CLOCK_THREAD_CPUTIME_ID, which package
// syscall does not name.
const clockThreadCPUTime = 3

// threadCPUTime is the CPU time of the calling thread. The listener cost's
// ticks are timed with it, on a locked thread, so that other processes,
// the process's other threads and the Go runtime's background work do not
// count as the ticks' cost. getrusage(RUSAGE_THREAD) would not do: it
// splits the thread's time by scheduler ticks and lags by milliseconds.
func threadCPUTime() time.Duration {
	var ts syscall.Timespec
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTime, uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}
