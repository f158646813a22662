package plot_test

import (
	"bytes"
	"errors"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/bench/plot"
)

// TestWritePNG: a PNG file that decodes, twice as wide with a sweep
// panel; other extensions are refused.
func TestWritePNG(t *testing.T) {
	run := plot.Run{Label: "r", TickTimes: []time.Duration{time.Millisecond, 2 * time.Millisecond, 25 * time.Millisecond}}
	dir := t.TempDir()
	width := func(f plot.Figure) int {
		t.Helper()
		path := filepath.Join(dir, "p.png")
		if err := plot.Write(path, f); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return img.Bounds().Dx()
	}
	one := width(plot.Figure{Runs: []plot.Run{run}})
	two := width(plot.Figure{Runs: []plot.Run{run, run}, Sweep: []plot.Point{{Listeners: 1}, {Listeners: 2}}})
	if one <= 0 || two < 2*one-2 {
		t.Errorf("widths %d and %d: the sweep panel should double the width", one, two)
	}
	if err := plot.Write(filepath.Join(dir, "p.jpg"), plot.Figure{Runs: []plot.Run{run}}); !errors.Is(err, plot.ErrFormat) {
		t.Errorf("a .jpg: %v, want ErrFormat", err)
	}
	if err := plot.Write(filepath.Join(dir, "p.svg"), plot.Figure{}); err == nil {
		t.Error("no run: no error")
	}
}
