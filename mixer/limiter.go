package mixer

import "math"

// Limiter keeps one output within int16 without wrapping around. When a
// frame's peak would exceed the ceiling it ramps its gain down across the
// frame (no step, so no click), then recovers slowly; a final clamp catches
// what the ramp lets through. The zero value is ready to use.
type Limiter struct {
	gain    float32 // gain at the end of the previous frame; 0 means unset (1)
	Clipped uint64  // samples the final clamp had to catch
}

const (
	ceiling = 32000.0 // a little headroom below int16's 32767
	// releasePerFrame lets the gain recover by about 6 dB in 300 ms.
	releasePerFrame = 1.035
)

// Process writes in, limited, to out (same length).
func (l *Limiter) Process(in []float32, out []int16) {
	if l.gain == 0 {
		l.gain = 1
	}
	var peak float32
	for _, v := range in {
		if v > peak {
			peak = v
		} else if -v > peak {
			peak = -v
		}
	}
	limit := float32(1)
	if peak > ceiling {
		limit = ceiling / peak
	}
	// Attack at once (within this frame's ramp), release slowly.
	target := limit
	if limit > l.gain {
		target = min(l.gain*releasePerFrame, limit)
	}
	start := l.gain
	if start == 1 && target == 1 {
		l.gain = 1
		l.Clipped += clampCopy(in, out)
		return
	}
	step := (target - start) / float32(len(in))
	g := start
	var clipped uint64
	for i, v := range in {
		g += step
		s := v * g
		if s > math.MaxInt16 {
			s = math.MaxInt16
			clipped++
		} else if s < math.MinInt16 {
			s = math.MinInt16
			clipped++
		}
		out[i] = int16(s)
	}
	l.Clipped += clipped
	l.gain = target
}

// clampCopy converts with saturation and returns how many samples saturated.
func clampCopy(in []float32, out []int16) uint64 {
	var clipped uint64
	for i, v := range in {
		if v > math.MaxInt16 {
			v = math.MaxInt16
			clipped++
		} else if v < math.MinInt16 {
			v = math.MinInt16
			clipped++
		}
		out[i] = int16(v)
	}
	return clipped
}
