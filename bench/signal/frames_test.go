package signal

import (
	"slices"
	"testing"

	"github.com/handsup-audio/handsup/codec"
)

// ScoreFrames follows a copy that runs 100 ms late, loses 5 ms of audio
// at 4 s (as a stretch or a dropped period does), and has 60 ms replaced
// by a tone twice: it counts frames of the replaced spans as dropped, and
// nothing else, neither the shift nor the splice. A frame is scored with
// its neighbours around it (the 60 ms fit), so the frame next to a span
// may count too; and its search is free within ±25 ms, so in a steady
// vowel a frame of the span may be matched a pitch period off: a frame is
// counted when nothing near where it belongs sounds like it.
func TestScoreFramesCountsReplacedFrames(t *testing.T) {
	const rate = codec.SampleRate
	ref := make([]int16, 10*rate)
	NewVoice(5).Fill(ref)
	heard := make([]int16, 0, len(ref)+rate)
	heard = append(heard, make([]int16, rate/10)...) // 100 ms late
	heard = append(heard, ref[:4*rate]...)
	heard = append(heard, ref[4*rate+rate/200:]...) // 5 ms removed
	tone := NewTone(1234, 8000)
	var spans [][2]int // replaced, in ref's samples
	for _, at := range []int{3 * rate, 6 * rate} {
		i := at
		for sig(ref[i:i+3*segLen]) < 3e9 {
			i += segLen
		}
		j := i + rate/10
		if i > 4*rate {
			j -= rate / 200
		}
		tone.Fill(heard[j : j+3*segLen])
		spans = append(spans, [2]int{i, i + 3*segLen})
	}
	segs := ScoreFrames(ref, heard, 0, 300*rate/1000, rate)
	if len(segs) < 200 {
		t.Fatalf("%d frames scored", len(segs))
	}
	per := make([]int, len(spans))
	for _, s := range segs {
		if s.SNR >= DroppedBelowDB {
			continue
		}
		in := false
		for k, sp := range spans {
			if s.Start >= sp[0]-segLen && s.Start < sp[1]+segLen {
				per[k]++
				in = true
			}
		}
		if !in {
			t.Errorf("frame at %d (%.2f s) counted dropped (SNR %.1f dB): it was there", s.Start, float64(s.Start)/rate, s.SNR)
		}
	}
	for k, n := range per {
		if n == 0 {
			t.Errorf("no frame of the span replaced at %.2f s counted dropped", float64(spans[k][0])/rate)
		}
	}
	if got, want := DroppedFrames(segs), per[0]+per[1]; got != want {
		t.Errorf("DroppedFrames = %d, want %d", got, want)
	}
}

// sig is the energy of a segment.
func sig(x []int16) float64 {
	var e float64
	for _, v := range x {
		e += float64(v) * float64(v)
	}
	return e
}

// A run stops at the same moment for both listeners, so the one further
// behind has not heard the end yet: what it could not have heard is not
// dropped.
func TestScoreFramesStopsWhereHeardEnds(t *testing.T) {
	const rate = codec.SampleRate
	ref := make([]int16, 10*rate)
	NewVoice(5).Fill(ref)
	late := 120 * rate / 1000
	heard := append(make([]int16, late), ref[:len(ref)-late]...)
	segs := ScoreFrames(ref, heard, 0, 300*rate/1000, rate)
	if len(segs) < 200 {
		t.Fatalf("%d frames scored", len(segs))
	}
	if n := DroppedFrames(segs); n != 0 {
		t.Errorf("%d frames counted dropped in audio that was all there, up to where it stopped", n)
	}
}

// Concealments places each frame of concealment at its timestamp, and
// DroppedOrConcealed counts a frame scored as dropped and concealed there
// once, concealment elsewhere in the scored frames beside the dropped
// ones, and none outside them.
func TestDroppedOrConcealed(t *testing.T) {
	const f = codec.FrameSamples
	ts0 := uint32(0xFFFFFFFF - 3*f) // the timestamps wrap
	var c Concealments
	c.Observe(0, 0)
	c.Observe(f, ts0+2*f) // frame 2
	c.Observe(f, ts0+2*f) // nothing new
	c.Observe(3*f, ts0+6*f)
	c.Observe(4*f, ts0+11*f)
	c.Observe(5*f, ts0+11*f) // the buffer ran empty twice before frame 11: both there
	off := c.Offsets(ts0)
	if want := []int{2 * f, 5 * f, 6 * f, 11 * f, 11 * f}; !slices.Equal(off, want) || c.Frames() != len(want) {
		t.Fatalf("offsets %v, want %v", off, want)
	}
	var segs []Segment
	for i := range 10 { // frames 1–10 scored; 2 and 8 dropped
		snr := 12.0
		if i+1 == 2 || i+1 == 8 {
			snr = -3
		}
		segs = append(segs, Segment{Start: (i + 1) * f, SNR: snr})
	}
	// 2: dropped and concealed, 1; 5, 6: concealed, 2; 8: dropped, 1;
	// 11: not scored.
	if got := DroppedOrConcealed(segs, off); got != 4 {
		t.Errorf("DroppedOrConcealed = %d, want 4", got)
	}
	if got := DroppedOrConcealed(segs, []int{3 * f, 3 * f, 3*f + f/2 - 1}); got != 2+3 {
		t.Errorf("three concealed frames in frame 3: DroppedOrConcealed = %d, want 5", got)
	}
	if got := DroppedOrConcealed(segs, nil); got != DroppedFrames(segs) {
		t.Errorf("nothing concealed: DroppedOrConcealed = %d, want DroppedFrames's %d", got, DroppedFrames(segs))
	}
}
