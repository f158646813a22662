package plot

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	gonum "gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Run is one benchmark run's tick times.
type Run struct {
	Label     string          // e.g. "10000 listeners"
	TickTimes []time.Duration // every measured tick's wall time
}

// Point is one run of a sweep.
type Point struct {
	Listeners  int           // per room
	CPUPerTick time.Duration // process CPU per engine tick
	TickP50    time.Duration // median of the tick's wall time
}

// Figure is what Write draws: the tick-time distribution of Runs and,
// with two Points or more, the sweep beside it.
type Figure struct {
	Title string
	Runs  []Run
	Sweep []Point
}

// ErrFormat is returned for a file name that is neither .png nor .svg.
var ErrFormat = errors.New("plot: the file name must end in .png or .svg")

// budget is the engine's tick period: a tick past it is late.
const budget = 20 * time.Millisecond

// Write renders f into path, PNG or SVG by its extension.
func Write(path string, f Figure) error {
	ext := strings.ToLower(filepath.Ext(path))
	if ext != ".png" && ext != ".svg" {
		return fmt.Errorf("%w: %q", ErrFormat, path)
	}
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := Render(file, ext[1:], f); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

// Render writes f to w in format "png" or "svg".
func Render(w io.Writer, format string, f Figure) error {
	if len(f.Runs) == 0 {
		return errors.New("plot: no run to draw")
	}
	plots := []*gonum.Plot{distribution(f)}
	if len(f.Sweep) >= 2 {
		plots = append(plots, sweep(f.Sweep))
	}
	width := vg.Length(len(plots)) * 14 * vg.Centimeter
	height := 10 * vg.Centimeter
	var canvas vg.CanvasWriterTo
	switch format {
	case "png":
		canvas = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(110),
			vgimg.UseBackgroundColor(color.White))}
	case "svg":
		canvas = vgsvg.New(width, height)
	default:
		return fmt.Errorf("%w: format %q", ErrFormat, format)
	}
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Centimeter, PadTop: 2 * vg.Millimeter,
		PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 4 * vg.Millimeter}
	dc := draw.New(canvas)
	cells := gonum.Align([][]*gonum.Plot{plots}, tiles, dc)
	for i, p := range plots {
		p.Draw(cells[0][i])
	}
	_, err := canvas.WriteTo(w)
	return err
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// distribution draws each run's tick times as a cumulative distribution:
// the share of ticks that took at most x ms.
func distribution(f Figure) *gonum.Plot {
	p := gonum.New()
	p.Title.Text = f.Title
	if p.Title.Text == "" {
		p.Title.Text = "Tick time distribution"
	}
	p.X.Label.Text = "tick wall time (ms, log scale)"
	p.Y.Label.Text = "share of ticks at most x"
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = false, false
	p.Legend.YOffs = 8 * vg.Millimeter
	var longest time.Duration
	shortest := time.Duration(1<<63 - 1)
	for i, r := range f.Runs {
		if len(r.TickTimes) == 0 {
			continue
		}
		sorted := slices.Clone(r.TickTimes)
		slices.Sort(sorted)
		longest = max(longest, sorted[len(sorted)-1])
		shortest = min(shortest, sorted[0])
		pts := make(plotter.XYs, 0, 2*len(sorted))
		for j, d := range sorted {
			y0 := float64(j) / float64(len(sorted))
			pts = append(pts, plotter.XY{X: ms(d), Y: y0}, plotter.XY{X: ms(d), Y: y0 + 1/float64(len(sorted))})
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			continue
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(1.5)
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("%s (%d ticks)", r.Label, len(sorted)), line)
	}
	// A log scale: most ticks take a millisecond or two, the ones that
	// matter are the stragglers near and past the 20 ms budget.
	p.X.Scale = gonum.LogScale{}
	p.X.Tick.Marker = gonum.LogTicks{Prec: -1}
	p.X.Min = max(ms(shortest)/1.2, 0.01)
	p.X.Max = max(ms(longest)*1.2, ms(budget)*1.5)
	{ // the budget
		mark, err := plotter.NewLine(plotter.XYs{{X: ms(budget), Y: 0}, {X: ms(budget), Y: 1}})
		if err == nil {
			mark.Color = color.RGBA{R: 200, A: 255}
			mark.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(mark)
			p.Legend.Add("20 ms budget", mark)
		}
	}
	return p
}

// sweep draws CPU per tick and the median tick time against listeners per
// room (the tail is in the distribution beside it).
func sweep(points []Point) *gonum.Plot {
	p := gonum.New()
	p.Title.Text = "Cost against audience"
	p.X.Label.Text = "listeners per room"
	p.Y.Label.Text = "µs per tick"
	p.Add(plotter.NewGrid())
	p.Legend.Top, p.Legend.Left = true, true
	cpu := make(plotter.XYs, len(points))
	p50 := make(plotter.XYs, len(points))
	for i, pt := range points {
		cpu[i] = plotter.XY{X: float64(pt.Listeners), Y: float64(pt.CPUPerTick) / float64(time.Microsecond)}
		p50[i] = plotter.XY{X: float64(pt.Listeners), Y: float64(pt.TickP50) / float64(time.Microsecond)}
	}
	for i, s := range []struct {
		name string
		xys  plotter.XYs
	}{{"CPU per tick (process)", cpu}, {"tick wall time p50", p50}} {
		line, points, err := plotter.NewLinePoints(s.xys)
		if err != nil {
			continue
		}
		line.Color, points.Color = plotutil.Color(i), plotutil.Color(i)
		points.Shape = plotutil.Shape(i)
		p.Add(line, points)
		p.Legend.Add(s.name, line, points)
	}
	p.X.Min, p.Y.Min = 0, 0
	return p
}
