package tsm_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/tsm"
)

// tone is n samples of a 200 Hz tone (period 240 samples) with its second
// harmonic.
func tone(n int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		x := float64(i) / codec.SampleRate
		pcm[i] = int16(8000*math.Sin(2*math.Pi*200*x) + 3000*math.Sin(2*math.Pi*400*x+1))
	}
	return pcm
}

// maxStep is the largest |x[i+1] − x[i]|.
func maxStep(pcm []int16) int {
	m := 0
	for i := 1; i < len(pcm); i++ {
		m = max(m, abs(int(pcm[i])-int(pcm[i-1])))
	}
	return m
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestAccelerateRemovesWholePeriods(t *testing.T) {
	in := tone(1440)
	pcm := slices.Clone(in)
	n, r := tsm.Accelerate(pcm, 0, tsm.DefaultThreshold)
	if r.Period == 0 || r.Period%240 != 0 || n != len(in)-r.Period {
		t.Fatalf("Accelerate = %d, %+v; want a multiple of the 240-sample period removed", n, r)
	}
	if r.Correlation < 0.99 {
		t.Errorf("correlation %.3f on a steady tone", r.Correlation)
	}
	// Removing whole periods of a steady tone leaves the tone as it was.
	for i := range n {
		if d := abs(int(pcm[i]) - int(in[i])); d > 2 {
			t.Fatalf("sample %d: %d, want %d", i, pcm[i], in[i])
		}
	}
}

func TestPreemptiveExpandInsertsAPeriod(t *testing.T) {
	in := tone(960)
	pcm := make([]int16, len(in), len(in)+tsm.MaxPeriod)
	copy(pcm, in)
	n, r := tsm.PreemptiveExpand(pcm, 0, tsm.DefaultThreshold)
	if r.Period == 0 || r.Period%240 != 0 || n != len(in)+r.Period {
		t.Fatalf("PreemptiveExpand = %d, %+v", n, r)
	}
	out := pcm[:n]
	if s, want := maxStep(out), maxStep(in); s > want+2 {
		t.Errorf("largest step %d after the insertion, %d before", s, want)
	}
	for i := range len(in) - r.Period {
		if d := abs(int(out[n-1-i]) - int(in[len(in)-1-i])); d > 2 {
			t.Fatalf("the block's end moved: sample %d from the end is %d, want %d", i, out[n-1-i], in[len(in)-1-i])
		}
	}
	// Without spare capacity nothing is inserted.
	if n, r := tsm.PreemptiveExpand(slices.Clip(slices.Clone(in)), 0, tsm.DefaultThreshold); n != len(in) || r.Period != 0 {
		t.Errorf("without room: %d, %+v", n, r)
	}
}

func TestNoiseIsLeftAlone(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pcm := make([]int16, 1440, 1440+tsm.MaxPeriod)
	for i := range pcm {
		pcm[i] = int16(rng.IntN(16000) - 8000)
	}
	in := slices.Clone(pcm)
	if n, r := tsm.Accelerate(pcm, 0, tsm.DefaultThreshold); n != len(in) || r.Period != 0 || r.Quiet {
		t.Errorf("Accelerate on loud noise = %d, %+v", n, r)
	}
	if n, r := tsm.PreemptiveExpand(pcm, 0, tsm.DefaultThreshold); n != len(in) || r.Period != 0 {
		t.Errorf("PreemptiveExpand on loud noise = %d, %+v", n, r)
	}
	if !slices.Equal(pcm, in) {
		t.Error("a block left alone was changed")
	}
	// Quiet noise (a pause) is stretched.
	for i := range pcm {
		pcm[i] /= 200
	}
	if n, r := tsm.Accelerate(pcm, 0, tsm.DefaultThreshold); n == len(in) || !r.Quiet {
		t.Errorf("Accelerate on quiet noise = %d, %+v", n, r)
	}
}

func TestShortBlocks(t *testing.T) {
	for _, n := range []int{0, 1, 2*tsm.MinPeriod - 1} {
		pcm := tone(n)
		if got, r := tsm.Accelerate(pcm, 0, 0); got != n || r.Period != 0 {
			t.Errorf("Accelerate(%d samples) = %d, %+v", n, got, r)
		}
	}
	// A 10 ms block is searched up to 5 ms.
	pcm := tone(480)
	if n, r := tsm.Accelerate(pcm, 0, tsm.DefaultThreshold); r.Period != 240 || n != 240 {
		t.Errorf("Accelerate(480 samples) = %d, %+v", n, r)
	}
}

func TestNoAllocs(t *testing.T) {
	in := tone(1440)
	pcm := make([]int16, 1440, 1440+tsm.MaxPeriod)
	if a := testing.AllocsPerRun(50, func() {
		copy(pcm[:1440], in)
		tsm.Accelerate(pcm[:1440], 0, tsm.DefaultThreshold)
		copy(pcm[:1440], in)
		tsm.PreemptiveExpand(pcm[:1440], 0, tsm.DefaultThreshold)
	}); a != 0 {
		t.Errorf("%v allocations per stretch", a)
	}
}

// stretchSpeech encodes and decodes seconds of a voice, and stretches the
// decode by rate (−0.01: 1% shorter; +0.01: 1% longer) as a player does:
// 20 ms out per tick from a FIFO that decodes the next frame when it holds
// less, and tries one stretch on the FIFO after each decode while the
// stretch is behind rate. It returns the source, the plain decode and the
// stretched decode, and the samples stretched.
func stretchSpeech(t *testing.T, seed uint64, seconds int, rate float64) (src, plain, stretched []int16, done int) {
	t.Helper()
	enc, err := codec.NewEncoder(codec.EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := codec.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	const frame = codec.FrameSamples
	frames := seconds * 50
	src = make([]int16, frames*frame)
	signal.NewVoice(seed).Fill(src)
	pkt := make([]byte, codec.MaxPacketBytes)
	fifo := make([]int16, 0, 2*frame+tsm.MaxPeriod)
	next := 0
	for {
		for len(fifo) < frame && next < frames {
			m, err := enc.Encode(src[next*frame:(next+1)*frame], pkt)
			if err != nil {
				t.Fatal(err)
			}
			next++
			at := len(fifo)
			got, err := dec.Decode(pkt[:m], fifo[at:at+frame])
			if err != nil || got != frame {
				t.Fatalf("decode: %d, %v", got, err)
			}
			fifo = fifo[:at+frame]
			plain = append(plain, fifo[at:]...)
			if done < int(math.Abs(rate)*float64(len(plain))) {
				var r tsm.Result
				n := len(fifo)
				if rate < 0 {
					n, r = tsm.Accelerate(fifo, 0, tsm.DefaultThreshold)
				} else {
					n, r = tsm.PreemptiveExpand(fifo, 0, tsm.DefaultThreshold)
				}
				fifo = fifo[:n]
				done += r.Period
			}
		}
		if len(fifo) < frame {
			return src, plain, stretched, done
		}
		stretched = append(stretched, fifo[:frame]...)
		fifo = fifo[:copy(fifo, fifo[frame:])]
	}
}

// A stretch of ±1% on speech scores within 1 dB segmental SNR of the
// plain decode: each 20 ms segment compared at its own lag, followed
// locally (signal.TrackedSegmentalSNR), against the source (where the
// codec's own error dominates) and against the plain decode itself (where
// an identical copy scores signal.SegmentMaxDB).
func TestSpeechStretchQuality(t *testing.T) {
	const seconds = 12
	search := 20 * codec.SampleRate / 1000 // ±20 ms per segment
	for _, rate := range []float64{-0.01, 0.01} {
		src, plain, stretched, done := stretchSpeech(t, 7, seconds, rate)
		ref, n0, _ := signal.TrackedSegmentalSNR(src, plain, 0, codec.SampleRate, search)
		got, n1, lag := signal.TrackedSegmentalSNR(src, stretched, 0, codec.SampleRate, search)
		same, n2, _ := signal.TrackedSegmentalSNR(plain, stretched, 0, codec.SampleRate, search)
		t.Logf("rate %+.0f%%: %d samples stretched (%.2f%%), final lag %d ms; segmental SNR against the source %.2f dB (%d segments), the plain decode's %.2f dB (%d); against the plain decode %.2f dB (%d)",
			rate*100, done, 100*float64(done)/float64(len(plain)), lag*1000/codec.SampleRate, got, n1, ref, n0, same, n2)
		if float64(done) < 0.009*float64(len(plain)) {
			t.Errorf("rate %+.0f%%: only %d samples stretched of %d", rate*100, done, len(plain))
		}
		if got < ref-1 {
			t.Errorf("rate %+.0f%%: segmental SNR %.2f dB against the source, more than 1 dB below the plain decode's %.2f dB", rate*100, got, ref)
		}
		if same < signal.SegmentMaxDB-1 {
			t.Errorf("rate %+.0f%%: segmental SNR %.2f dB against the plain decode, more than 1 dB below an identical copy's %d dB", rate*100, same, signal.SegmentMaxDB)
		}
	}
}

func BenchmarkAccelerate(b *testing.B) {
	in := tone(1440)
	pcm := make([]int16, 1440)
	b.ReportAllocs()
	for b.Loop() {
		copy(pcm, in)
		tsm.Accelerate(pcm, 0, tsm.DefaultThreshold)
	}
}

func BenchmarkPreemptiveExpand(b *testing.B) {
	in := tone(960)
	pcm := make([]int16, 960, 960+tsm.MaxPeriod)
	b.ReportAllocs()
	for b.Loop() {
		copy(pcm[:960], in)
		tsm.PreemptiveExpand(pcm[:960], 0, tsm.DefaultThreshold)
	}
}
