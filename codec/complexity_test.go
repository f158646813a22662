package codec_test

import (
	"fmt"
	"testing"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
)

// BenchmarkEncodeSpeech encodes 20 ms frames of a synthetic voice (its
// pauses included) at several complexities: what an encode costs at the
// tiers' default (5) and at what the engine sheds load to
// (engine.DefaultShedComplexity, 1).
func BenchmarkEncodeSpeech(b *testing.B) {
	const frames = 500 // 10 s
	voice := signal.NewVoice(1)
	pcm := make([]int16, frames*codec.FrameSamples)
	voice.Fill(pcm)
	for _, c := range []int{0, 1, 2, 3, 5, 10} {
		b.Run(fmt.Sprintf("complexity=%d", c), func(b *testing.B) {
			enc, err := codec.NewEncoder(codec.EncoderConfig{})
			if err != nil {
				b.Fatal(err)
			}
			if err := enc.SetComplexity(c); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, codec.MaxPacketBytes)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				f := i % frames * codec.FrameSamples
				if _, err := enc.Encode(pcm[f:f+codec.FrameSamples], buf); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(i), "µs/frame")
		})
	}
}
