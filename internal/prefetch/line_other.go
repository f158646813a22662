//go:build !amd64 && !arm64

package prefetch

// At does nothing where no prefetch instruction is wired in.
func At(uintptr, int) {}
