//go:build amd64 || arm64

package prefetch

// At starts loading the n cache lines from addr on: the CPU's prefetch
// instruction, n times in one call (a large room calls it for each
// listener's objects, each a few lines).
func At(addr uintptr, n int)
