package prefetch_test

import (
	"testing"
	"unsafe"

	"github.com/handsup-audio/handsup/internal/prefetch"
)

// A prefetch changes nothing and never faults, whatever the address.
func TestBytesChangeNothing(t *testing.T) {
	buf := make([]byte, 4*prefetch.LineSize)
	for i := range buf {
		buf[i] = byte(i)
	}
	prefetch.Bytes(unsafe.Pointer(&buf[0]), 4*prefetch.LineSize)
	prefetch.Bytes(nil, 2*prefetch.LineSize) // an address nothing is mapped at
	for i := range buf {
		if buf[i] != byte(i) {
			t.Fatalf("byte %d changed", i)
		}
	}
}

// Start loading a listener's state before the loop reaches it.
func ExampleBytes() {
	type state struct{ key [176]byte }
	s := new(state)
	prefetch.Bytes(unsafe.Pointer(s), unsafe.Sizeof(*s))
	// Output:
}
