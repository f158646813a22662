package procs

import (
	"runtime"
	"testing"
)

// These tests change GOMAXPROCS and the environment: not parallel.

func TestSpareProcessor(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "")
	for _, tc := range []struct{ workers, want int }{{3, 3}, {1, 1}} {
		if got := SpareProcessor(tc.workers); got != tc.want {
			t.Errorf("SpareProcessor(%d) = %d, want %d", tc.workers, got, tc.want)
		}
		if p := runtime.GOMAXPROCS(0); p != tc.want+1 {
			t.Errorf("SpareProcessor(%d): GOMAXPROCS %d, want one spare: %d", tc.workers, p, tc.want+1)
		}
	}
	runtime.GOMAXPROCS(2)
	if got := SpareProcessor(0); got != 2 || runtime.GOMAXPROCS(0) != 3 {
		t.Errorf("SpareProcessor(0) with GOMAXPROCS 2 = %d workers, GOMAXPROCS %d; want 2 and 3", got, runtime.GOMAXPROCS(0))
	}
}

// The GOMAXPROCS environment variable decides over the spare.
func TestSpareProcessorLeavesGOMAXPROCSEnv(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	t.Setenv("GOMAXPROCS", "2")
	runtime.GOMAXPROCS(2)
	if got := SpareProcessor(4); got != 4 || runtime.GOMAXPROCS(0) != 2 {
		t.Errorf("SpareProcessor(4) = %d, GOMAXPROCS %d; want 4 and 2 untouched", got, runtime.GOMAXPROCS(0))
	}
}
