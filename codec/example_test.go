package codec_test

import (
	"errors"
	"fmt"
	"math"

	"github.com/handsup-audio/handsup/codec"
)

// Encode one 20 ms frame of a tone, read the packet's TOC without decoding
// it, and decode it back; then conceal a lost frame.
func Example() {
	enc, err := codec.NewEncoder(codec.EncoderConfig{Bitrate: 32000})
	if err != nil {
		panic(err)
	}
	dec, err := codec.NewDecoder()
	if err != nil {
		panic(err)
	}

	pcm := make([]int16, codec.FrameSamples) // 20 ms at 48 kHz, mono
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(i)/codec.SampleRate))
	}
	packet := make([]byte, codec.MaxPacketBytes)
	n, err := enc.Encode(pcm, packet)
	if err != nil {
		panic(err)
	}
	packet = packet[:n]

	toc, err := codec.ParseTOC(packet)
	if err != nil {
		panic(err)
	}
	fmt.Println("frames:", toc.Frames, "of", toc.FrameSamples, "samples; stereo:", toc.Stereo)

	out := make([]int16, codec.MaxFrameSamples) // room for any packet
	got, err := dec.Decode(packet, out)
	if err != nil {
		panic(err)
	}
	fmt.Println("decoded", got, "samples")

	// The next packet is lost: conceal exactly 20 ms instead.
	if err := dec.Conceal(out[:codec.FrameSamples]); err != nil {
		panic(err)
	}
	fmt.Println("concealed", codec.FrameSamples, "samples")
	// Output:
	// frames: 1 of 960 samples; stereo: false
	// decoded 960 samples
	// concealed 960 samples
}

// ParseTOC reads what an Opus packet's first byte says (RFC 6716 §3.1):
// here configuration 15, hybrid fullband 20 ms, one mono frame.
func ExampleParseTOC() {
	toc, err := codec.ParseTOC([]byte{15<<3 | 0, 0xAA, 0xBB})
	if err != nil {
		panic(err)
	}
	fmt.Println(toc.Config, toc.Mode, toc.Bandwidth, toc.Stereo, toc.Frames, toc.FrameSamples)
	fmt.Println(toc.Samples(), "samples:", toc.Samples()*1000/codec.SampleRate, "ms")

	// Code 3 packets carry a frame count: here three 20 ms frames of SILK
	// wideband (configuration 9), one byte each. A malformed packet's error
	// wraps ErrMalformedPacket.
	toc, err = codec.ParseTOC([]byte{9<<3 | 3, 3, 0xAA, 0xBB, 0xCC})
	if err != nil {
		panic(err)
	}
	fmt.Println(toc.Mode, toc.Bandwidth, toc.Frames, "frames,", toc.Samples()*1000/codec.SampleRate, "ms")

	_, err = codec.ParseTOC(nil)
	fmt.Println(errors.Is(err, codec.ErrMalformedPacket), err)
	// Output:
	// 15 hybrid fullband false 1 960
	// 960 samples: 20 ms
	// silk wideband 3 frames, 60 ms
	// true codec: malformed opus packet: empty
}
