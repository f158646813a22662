//go:build amd64 || arm64

package prefetch

// line issues the CPU's prefetch instruction for addr's cache line.
func line(addr uintptr)
