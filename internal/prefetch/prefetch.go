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

// Bytes starts loading the cache lines that hold the size bytes from p:
// only those, however p falls in its line (an object of 184 bytes that
// starts a line takes three, not the four a count that allows for any
// start would load). The addresses are computed as integers, never made
// into pointers: they may run past p's object. At (in assembly where a
// prefetch instruction is wired in) starts loading n lines from an
// address kept as an integer (an object's address read once, which the
// hint may outlive: a stale address loads a line for nothing).
func Bytes(p unsafe.Pointer, size uintptr) { At(span(uintptr(p), size)) }

// span is the first line and the count of lines that hold size bytes
// from addr.
func span(addr, size uintptr) (first uintptr, n int) {
	if size == 0 {
		return addr, 0
	}
	first = addr &^ (LineSize - 1)
	last := (addr + size - 1) &^ (LineSize - 1)
	return first, int((last-first)/LineSize) + 1
}
