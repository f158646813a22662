// Package prefetch asks the CPU to start loading memory that code is about
// to read, without waiting for it: the hint that lets a loop over
// thousands of listeners, each with state that has left the caches since
// the last tick, overlap one listener's memory loads with the work on the
// one before it. A prefetch never faults and changes nothing: any address
// may be given.
package prefetch

import "unsafe"

// LineSize is the cache line the hint loads, on the CPUs handsup runs on.
const LineSize = 64

// Lines starts loading the n cache lines from p on. The addresses are
// computed as integers, never made into pointers: they may run past p's
// object. At (in assembly where a prefetch instruction is wired in) is
// Lines for an address kept as an integer (an object's address read
// once, which the hint may outlive: a stale address loads a line for
// nothing).
func Lines(p unsafe.Pointer, n int) { At(uintptr(p), n) }
