package prefetch

import "testing"

// Bytes loads the lines its bytes fall in, and no more.
func TestSpanCountsTheLinesTheBytesFallIn(t *testing.T) {
	for _, c := range []struct {
		addr, size uintptr
		first      uintptr
		n          int
	}{
		{0x1000, 184, 0x1000, 3},     // a participant's hot fields from a line's start
		{0x1000 + 32, 84, 0x1000, 2}, // a peer's, 32 bytes in: within two lines
		{0x1000 + 48, 84, 0x1000, 3}, // 48 bytes in: its last bytes reach a third
		{0x1000 + 63, 1, 0x1000, 1},
		{0x1000 + 63, 2, 0x1000, 2},
		{0x1000, 64, 0x1000, 1},
		{0x1000, 0, 0x1000, 0},
	} {
		first, n := span(c.addr, c.size)
		if first != c.first || n != c.n {
			t.Errorf("span(%#x, %d) = %#x, %d lines; want %#x, %d", c.addr, c.size, first, n, c.first, c.n)
		}
	}
}
