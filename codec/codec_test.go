package codec

import (
	"errors"
	"math"
	"testing"

	"github.com/hraban/opus"
)

// tone is a sine of freq Hz at amp, from sample offset start.
func tone(n int, freq, amp float64, start int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(amp * math.Sin(2*math.Pi*freq*float64(start+i)/SampleRate))
	}
	return pcm
}

func rms(pcm []int16) float64 {
	var s float64
	for _, v := range pcm {
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(pcm)))
}

// encodeFrames encodes ticks 20 ms frames of a 440 Hz tone.
func encodeFrames(t testing.TB, cfg EncoderConfig, ticks int) [][]byte {
	t.Helper()
	enc, err := NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	buf := make([]byte, MaxPacketBytes)
	for i := 0; i < ticks; i++ {
		n, err := enc.Encode(tone(FrameSamples, 440, 8000, i*FrameSamples), buf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append([]byte(nil), buf[:n]...))
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	packets := encodeFrames(t, EncoderConfig{}, 20)
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, MaxFrameSamples)
	var last []int16
	for _, p := range packets {
		n, err := dec.Decode(p, pcm)
		if err != nil || n != FrameSamples {
			t.Fatalf("decode: n=%d err=%v", n, err)
		}
		last = pcm[:n]
	}
	if r := rms(last); r < 4000 || r > 7500 { // the tone's RMS is 8000/√2 ≈ 5657
		t.Fatalf("decoded RMS %.0f, want about 5657", r)
	}
}

// Packets of every Opus duration and of stereo streams decode to mono of
// the duration their TOC announces.
func TestDecodeAnyDuration(t *testing.T) {
	for _, tc := range []struct {
		name     string
		channels int
		samples  int
	}{
		{"2.5 ms", 1, 120}, {"5 ms", 1, 240}, {"10 ms", 1, 480}, {"20 ms", 1, 960},
		{"40 ms", 1, 1920}, {"60 ms", 1, 2880}, {"20 ms stereo", 2, 960}, {"60 ms stereo", 2, 2880},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := opus.NewEncoder(SampleRate, tc.channels, opus.AppAudio)
			if err != nil {
				t.Fatal(err)
			}
			mono := tone(tc.samples, 440, 8000, 0)
			in := make([]int16, tc.samples*tc.channels)
			for i := range in {
				in[i] = mono[i/tc.channels]
			}
			buf := make([]byte, 4000)
			n, err := enc.Encode(in, buf)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := PacketSamples(buf[:n]); err != nil || got != tc.samples {
				t.Fatalf("PacketSamples = %d, %v; want %d", got, err, tc.samples)
			}
			dec, _ := NewDecoder()
			pcm := make([]int16, MaxFrameSamples)
			got, err := dec.Decode(buf[:n], pcm)
			if err != nil || got != tc.samples {
				t.Fatalf("Decode = %d, %v; want %d samples", got, err, tc.samples)
			}
		})
	}
}

// A 120 ms packet (code 3, six 20 ms frames) decodes whole.
func TestDecode120ms(t *testing.T) {
	enc, _ := opus.NewEncoder(SampleRate, 1, opus.AppVoIP)
	buf := make([]byte, 4000)
	n, err := enc.Encode(tone(5760, 440, 8000, 0), buf)
	if err != nil {
		t.Fatal(err)
	}
	dec, _ := NewDecoder()
	pcm := make([]int16, MaxFrameSamples)
	if got, err := dec.Decode(buf[:n], pcm); err != nil || got != 5760 {
		t.Fatalf("Decode = %d, %v; want 5760", got, err)
	}
}

func TestConcealExactly20ms(t *testing.T) {
	packets := encodeFrames(t, EncoderConfig{}, 5)
	dec, _ := NewDecoder()
	pcm := make([]int16, MaxFrameSamples)
	for _, p := range packets {
		if _, err := dec.Decode(p, pcm); err != nil {
			t.Fatal(err)
		}
	}
	// A buffer with a large capacity must still conceal just 20 ms.
	big := make([]int16, MaxFrameSamples)
	for i := range big {
		big[i] = 12345
	}
	if err := dec.Conceal(big[:FrameSamples]); err != nil {
		t.Fatal(err)
	}
	if big[FrameSamples] != 12345 {
		t.Fatal("Conceal wrote past 20 ms")
	}
	if r := rms(big[:FrameSamples]); r < 100 {
		t.Fatalf("concealment right after a tone is near silent (RMS %.0f)", r)
	}
}

// With FEC on and a loss hint, the next packet carries the lost frame.
func TestDecodeFEC(t *testing.T) {
	cfg := EncoderConfig{Bitrate: 24000, FEC: true, PacketLossPercent: 10, MaxBandwidth: Wideband}
	packets := encodeFrames(t, cfg, 30)
	dec, _ := NewDecoder()
	pcm := make([]int16, MaxFrameSamples)
	for i, p := range packets[:29] {
		if i == 20 { // lost: recover from packet 21
			if err := dec.DecodeFEC(packets[21], pcm[:FrameSamples]); err != nil {
				t.Fatal(err)
			}
			if r := rms(pcm[:FrameSamples]); r < 2000 {
				t.Fatalf("FEC frame RMS %.0f, want the tone (≈5657)", r)
			}
			continue
		}
		if _, err := dec.Decode(p, pcm); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCorruptPayloadIsAnError(t *testing.T) {
	dec, _ := NewDecoder()
	pcm := make([]int16, MaxFrameSamples)
	for name, p := range map[string][]byte{
		"empty":              {},
		"code 3 zero frames": {31<<3 | 3, 0},
		"code 2 bad length":  {31<<3 | 2, 0xff, 0xff},
		"frame too short":    {31<<3 | 3, 0x80 | 6, 0xff, 0xff, 0xff},
	} {
		if _, err := dec.Decode(p, pcm); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
	if err := dec.DecodeFEC(nil, pcm[:FrameSamples]); !errors.Is(err, ErrMalformedPacket) {
		t.Errorf("DecodeFEC(nil) = %v", err)
	}
}

func TestEncoderSettingsChangeWhileRunning(t *testing.T) {
	enc, err := NewEncoder(EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if got := enc.Config(); got.Bitrate != 32000 || got.Complexity != 5 || got.MaxBandwidth != Fullband {
		t.Fatalf("defaults: %+v", got)
	}
	buf := make([]byte, MaxPacketBytes)
	size := func(i int) int {
		n, err := enc.Encode(tone(FrameSamples, 440, 8000, i*FrameSamples), buf)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var hi, lo int
	for i := 0; i < 50; i++ {
		hi += size(i)
	}
	want := EncoderConfig{Bitrate: 12000, Complexity: 2, FEC: true, PacketLossPercent: 20, DTX: true, MaxBandwidth: Wideband}
	if err := enc.Apply(want); err != nil {
		t.Fatal(err)
	}
	if enc.Config() != want {
		t.Fatalf("config %+v, want %+v", enc.Config(), want)
	}
	for i := 50; i < 100; i++ {
		lo += size(i)
	}
	if lo*2 > hi {
		t.Fatalf("12 kbps used %d bytes per 50 frames, 32 kbps %d: bitrate change had no effect", lo, hi)
	}
	n, _ := enc.Encode(make([]int16, FrameSamples), buf)
	toc, err := ParseTOC(buf[:n])
	if err != nil || toc.Bandwidth > Wideband {
		t.Fatalf("bandwidth %v after capping at wideband (err %v)", toc.Bandwidth, err)
	}
	if _, err := enc.Encode(make([]int16, 100), buf); !errors.Is(err, ErrFrameSize) {
		t.Fatalf("short frame: err = %v", err)
	}
}

// DTX: a long silence turns into packets of at most two bytes.
func TestDTX(t *testing.T) {
	enc, _ := NewEncoder(EncoderConfig{DTX: true})
	buf := make([]byte, MaxPacketBytes)
	silent := make([]int16, FrameSamples)
	dtx := 0
	for i := 0; i < 100; i++ {
		n, err := enc.Encode(silent, buf)
		if err != nil {
			t.Fatal(err)
		}
		if IsDTX(buf[:n]) {
			dtx++
		}
	}
	if dtx < 50 {
		t.Fatalf("%d of 100 silent frames were DTX", dtx)
	}
}

func BenchmarkEncode(b *testing.B) {
	enc, _ := NewEncoder(EncoderConfig{})
	pcm := tone(FrameSamples, 440, 8000, 0)
	buf := make([]byte, MaxPacketBytes)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := enc.Encode(pcm, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	packets := encodeFrames(b, EncoderConfig{}, 50)
	dec, _ := NewDecoder()
	pcm := make([]int16, MaxFrameSamples)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := dec.Decode(packets[i%len(packets)], pcm); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkParseTOC(b *testing.B) {
	p := []byte{31<<3 | 3, 6}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseTOC(p); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHasFEC: packets from an encoder with in-band FEC and a loss hint carry
// LBRR once speech has started; without FEC, or in CELT, none does.
func TestHasFEC(t *testing.T) {
	count := func(cfg EncoderConfig) (withFEC, total int) {
		enc, err := NewEncoder(cfg)
		if err != nil {
			t.Fatal(err)
		}
		pcm := make([]int16, FrameSamples)
		buf := make([]byte, MaxPacketBytes)
		for i := range 100 {
			for j := range pcm { // a voiced signal with moving pitch and loudness
				x := float64(i*FrameSamples + j)
				f0 := 140 + 40*math.Sin(2*math.Pi*x/SampleRate/0.7)
				amp := 4000 + 3000*math.Sin(2*math.Pi*x/SampleRate*4)
				var v float64
				for h := 1; h <= 8; h++ {
					v += math.Sin(2*math.Pi*f0*float64(h)*x/SampleRate) / float64(h)
				}
				pcm[j] = int16(amp * v)
			}
			n, err := enc.Encode(pcm, buf)
			if err != nil {
				t.Fatal(err)
			}
			if i >= 10 {
				total++
				if HasFEC(buf[:n]) {
					withFEC++
				}
			}
		}
		return withFEC, total
	}
	fec, total := count(EncoderConfig{Bitrate: 24000, MaxBandwidth: Wideband, FEC: true, PacketLossPercent: 10})
	if fec < total*3/4 {
		t.Errorf("FEC on: %d of %d packets carry LBRR", fec, total)
	}
	if fec, _ := count(EncoderConfig{Bitrate: 24000, MaxBandwidth: Wideband}); fec != 0 {
		t.Errorf("FEC off: %d packets carry LBRR", fec)
	}
	if HasFEC([]byte{31 << 3, 0xff, 0xff}) || HasFEC(nil) || HasFEC([]byte{9 << 3}) {
		t.Error("CELT, empty or TOC-only packets read as FEC")
	}
}
