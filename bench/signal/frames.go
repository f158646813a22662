package signal

import (
	"math"
	"slices"

	"github.com/handsup-audio/handsup/codec"
)

// Frame-by-frame scoring of speech that went through a jitter buffer:
// which 20 ms frames of a reference (the speech sent, its packets decoded;
// or what a listener on a clean link got) a listener got, and which were
// dropped or concealed. The real-time test through the relay and the
// simulation (bench/quality) score the same way, so their figures
// compare.

// ScoreFrames follows ref (the speech sent, decoded, or what a listener
// on a clean link decoded) through heard (what the listener under test
// decoded) from skip on and returns every speech frame (ref's 20 ms
// segments above -50 dBFS). guess
// is where ref's start is expected in heard (a lag in samples); the first
// lag is the best fit of 3 s of ref from skip within ±search of it, so
// the clocks need only place the speech roughly. Then each half second
// is placed on its own (the best fit within ±BlockSearch of the previous
// one's lag), and each of its frames at its best fit within
// ±FrameSearch of the block's lag: a jitter buffer moves its audio a
// little at a time, and a frame-to-frame track, free to follow itself,
// wanders off through the frames a codec matches poorly and never comes
// back.
func ScoreFrames(ref, heard []int16, guess, search, skip int) []Segment {
	win := 3 * codec.SampleRate
	if skip+win > len(ref) {
		win = len(ref) - skip
	}
	lag := guess
	lo, hi := max(0, skip+guess-search), min(len(heard)-win, skip+guess+search)
	if win > 0 && lo < hi {
		if d, ok := BestFitLag(ref[skip:skip+win], heard[lo:hi+win], 0, hi-lo); ok {
			lag = lo + d - skip
		}
	}
	silent := math.Pow(10, segSilentDB/10.0) * 32768 * 32768 * segLen
	var segs []Segment
	const block = codec.SampleRate / 2
	for b := max(skip, segLen); b+block <= len(ref); b += block {
		if b+lag+block+FrameSearch > len(heard) {
			// heard ends before this half second could have come: a
			// run that stopped, not frames dropped.
			break
		}
		lo, hi := max(0, b+lag-BlockSearch), min(len(heard)-block, b+lag+BlockSearch)
		if lo < hi {
			if d, ok := BestFitLag(ref[b:b+block], heard[lo:hi+block], 0, hi-lo); ok {
				lag = lo + d - b
			}
		}
		for s := b; s < b+block && s+2*segLen <= len(ref); s += segLen {
			var sig float64
			for _, r := range ref[s : s+segLen] {
				sig += float64(r) * float64(r)
			}
			if sig < silent {
				continue // a pause
			}
			a := ref[s-segLen : s+2*segLen]
			from, to := max(0, s-segLen+lag-FrameSearch), min(len(heard), s+2*segLen+lag+FrameSearch)
			if to-from < 3*segLen {
				continue
			}
			d, _ := BestFitLag(a, heard[from:to], s-segLen+lag-FrameSearch-from, s-segLen+lag+FrameSearch-from)
			at := from + d - (s - segLen)
			segs = append(segs, Segment{Start: s, Lag: at, SNR: ratioDB(sig, sqErr(ref[s:s+segLen], heard, s+at))})
		}
	}
	return segs
}

// BlockSearch is how far ScoreFrames lets a half second's alignment move
// from the previous one's: ±150 ms. FrameSearch is how far a frame's may
// move from its half second's: ±25 ms, a stretch or two, or a frame
// inserted or removed.
const (
	BlockSearch = 150 * codec.SampleRate / 1000
	FrameSearch = 25 * codec.SampleRate / 1000
)

// DroppedBelowDB is the SNR, against the reference, under which a frame
// counts as dropped or concealed: its error is louder than the audio
// itself. Frames the listener got score 10–35 dB against a clean
// listener's audio, 8–14 dB against the speech sent (the server's
// re-encoding between them); concealment (the decoder's PLC, or silence
// where it faded) and a frame shifted off by one dropped score under it,
// though a frame of PLC that carries a steady vowel on may pass. DistortedBelowDB marks frames the listener
// got changed, against a clean listener's audio: a time-stretch's
// splice, or concealment that passed.
const (
	DroppedBelowDB   = 0
	DistortedBelowDB = 10
)

// DroppedFrames counts the frames under DroppedBelowDB.
func DroppedFrames(segs []Segment) int { return countBelow(segs, DroppedBelowDB) }

// DistortedFrames counts the frames under DistortedBelowDB (the dropped
// ones included).
func DistortedFrames(segs []Segment) int { return countBelow(segs, DistortedBelowDB) }

func countBelow(segs []Segment, db float64) int {
	n := 0
	for _, s := range segs {
		if s.SNR < db {
			n++
		}
	}
	return n
}

// Concealments places a jitter buffer's concealment in its stream, frame
// by frame, from the buffer's counters sampled after every tick
// (jitter.Stats's ConcealedSamples and LastConcealedTimestamp): a frame of
// concealment the listener hears, and which a reference cannot show (a
// frame inserted before a late packet, or one whose concealment scores
// above DroppedBelowDB), can then be counted beside the frames scored as
// dropped (DroppedOrConcealed). The zero value is ready.
type Concealments struct {
	samples uint64
	ts      []uint32
}

// Observe takes one sample of the counters. Concealment since the last
// sample is taken as the frames up to lastTS; sampled after every tick,
// that is where it was (the rare tick that conceals two frames apart
// places the first a frame off, which counts it, if anything, twice).
func (c *Concealments) Observe(concealedSamples uint64, lastTS uint32) {
	d := concealedSamples - c.samples
	c.samples = concealedSamples
	n := (d + codec.FrameSamples - 1) / codec.FrameSamples
	for k := n; k > 0; k-- {
		c.ts = append(c.ts, lastTS-uint32(k-1)*codec.FrameSamples)
	}
}

// Frames is how many frames of concealment were observed.
func (c *Concealments) Frames() int { return len(c.ts) }

// Offsets are the concealed frames' places in the stream: samples from
// the timestamp ts0 on.
func (c *Concealments) Offsets(ts0 uint32) []int {
	out := make([]int, len(c.ts))
	for i, ts := range c.ts {
		out[i] = int(int32(ts - ts0))
	}
	return out
}

// DroppedOrConcealed counts the frames of segs a listener lost: those
// under DroppedBelowDB, and those a buffer concealed, at concealed (the
// concealed frames' first samples, in the reference's samples; a frame
// belongs to the segment holding its middle). A segment counts the larger
// of the two: a late packet's concealment that was also scored as dropped
// is one frame lost, two concealments there are two. Concealment outside
// the segments (in a pause, or before the scoring starts) is not counted,
// as the frames there are not.
func DroppedOrConcealed(segs []Segment, concealed []int) int {
	mids := make([]int, len(concealed))
	for i, p := range concealed {
		mids[i] = p + codec.FrameSamples/2
	}
	slices.Sort(mids)
	n := 0
	for _, s := range segs {
		lo, _ := slices.BinarySearch(mids, s.Start)
		hi, _ := slices.BinarySearch(mids, s.Start+segLen)
		c := hi - lo
		if s.SNR < DroppedBelowDB {
			c = max(c, 1)
		}
		n += c
	}
	return n
}
