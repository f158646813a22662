package codec

import (
	"errors"
	"testing"
)

func TestParseTOC(t *testing.T) {
	tests := []struct {
		name    string
		packet  []byte
		mode    Mode
		bw      Bandwidth
		stereo  bool
		frame   int
		frames  int
		samples int
	}{
		{"SILK NB 10 ms", []byte{0 << 3}, ModeSILK, Narrowband, false, 480, 1, 480},
		{"SILK WB 20 ms", []byte{9 << 3, 1, 2}, ModeSILK, Wideband, false, 960, 1, 960},
		{"SILK WB 60 ms", []byte{11 << 3, 1}, ModeSILK, Wideband, false, 2880, 1, 2880},
		{"SILK MB 40 ms", []byte{6 << 3}, ModeSILK, Mediumband, false, 1920, 1, 1920},
		{"hybrid SWB 10 ms", []byte{12 << 3}, ModeHybrid, SuperWideband, false, 480, 1, 480},
		{"hybrid FB 20 ms stereo", []byte{15<<3 | 0x04}, ModeHybrid, Fullband, true, 960, 1, 960},
		{"CELT NB 2.5 ms", []byte{16 << 3}, ModeCELT, Narrowband, false, 120, 1, 120},
		{"CELT FB 20 ms", []byte{31 << 3}, ModeCELT, Fullband, false, 960, 1, 960},
		{"code 1: two equal frames", []byte{31<<3 | 1, 0, 0}, ModeCELT, Fullband, false, 960, 2, 1920},
		{"code 2: two frames", []byte{9<<3 | 2, 1, 0}, ModeSILK, Wideband, false, 960, 2, 1920},
		{"code 1: two 60 ms frames, exactly 120 ms", []byte{11<<3 | 1}, ModeSILK, Wideband, false, 2880, 2, 5760},
		{"code 3: six 20 ms frames", []byte{31<<3 | 3, 6}, ModeCELT, Fullband, false, 960, 6, 5760},
		{"code 3: 48 CELT 2.5 ms frames", []byte{16<<3 | 3, 48}, ModeCELT, Narrowband, false, 120, 48, 5760},
		{"code 3: VBR with padding", []byte{23<<3 | 3, 0xC0 | 3, 2, 1, 1, 7, 8, 9, 0, 0}, ModeCELT, Wideband, false, 960, 3, 2880},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			toc, err := ParseTOC(tc.packet)
			if err != nil {
				t.Fatal(err)
			}
			if toc.Mode != tc.mode || toc.Bandwidth != tc.bw || toc.Stereo != tc.stereo ||
				toc.FrameSamples != tc.frame || toc.Frames != tc.frames || toc.Samples() != tc.samples {
				t.Fatalf("got %+v (samples %d)", toc, toc.Samples())
			}
			if toc.Config != tc.packet[0]>>3 {
				t.Fatalf("config %d, want %d", toc.Config, tc.packet[0]>>3)
			}
		})
	}
}

func TestParseTOCMalformed(t *testing.T) {
	for name, packet := range map[string][]byte{
		"empty":                    nil,
		"code 3 without count":     {31<<3 | 3},
		"code 3 with zero frames":  {31<<3 | 3, 0},
		"code 3 longer than 120ms": {31<<3 | 3, 7}, // 7 × 20 ms
		"40 ms × 4 frames":         {10<<3 | 3, 4}, // 160 ms
		"code 1 odd length":        {31<<3 | 1, 1, 2, 3},
		"code 2 length past end":   {31<<3 | 2, 200, 1},
		"code 2 without length":    {31<<3 | 2},
		"code 3 padding past end":  {31<<3 | 3, 0x40 | 1, 9},
		"code 3 VBR past end":      {31<<3 | 3, 0x80 | 2, 50, 1},
		"code 3 CBR unequal":       {31<<3 | 3, 2, 1, 2, 3},
		"frame over 1275 bytes":    append([]byte{31 << 3}, make([]byte, 1276)...),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseTOC(packet)
			if !errors.Is(err, ErrMalformedPacket) {
				t.Fatalf("err = %v, want ErrMalformedPacket", err)
			}
		})
	}
}

// FuzzParseTOC checks the parser against libopus: a packet ParseTOC
// accepts, libopus decodes to exactly its duration; one it refuses,
// libopus refuses too (so nothing the decoder would fail on is buffered,
// and nothing it would play is dropped).
func FuzzParseTOC(f *testing.F) {
	f.Add([]byte{31<<3 | 3, 6})
	f.Add([]byte{9 << 3})
	f.Add([]byte{31<<3 | 3, 0x80 | 2, 1, 0xaa, 0xbb})    // code 3 VBR
	f.Add([]byte{31<<3 | 3, 0x40 | 2, 3, 1, 2, 0, 0, 0}) // code 3 with padding
	f.Add([]byte{15<<3 | 2, 252, 1, 1})                  // code 2, two-byte length
	f.Add([]byte{1<<3 | 1, 1, 2})                        // code 1 CBR
	f.Add(append([]byte{0 << 3}, make([]byte, 1276)...)) // a frame too long
	dec, err := NewDecoder()
	if err != nil {
		f.Fatal(err)
	}
	pcm := make([]int16, MaxFrameSamples)
	f.Fuzz(func(t *testing.T, packet []byte) {
		toc, err := ParseTOC(packet)
		if err == nil && (toc.Samples() < 120 || toc.Samples() > MaxFrameSamples) {
			t.Fatalf("duration %d outside 2.5..120 ms", toc.Samples())
		}
		n, decErr := dec.Decode(packet, pcm)
		switch {
		case err == nil && decErr != nil:
			t.Fatalf("ParseTOC accepts %x (%+v), libopus refuses it: %v", packet, toc, decErr)
		case err != nil && decErr == nil:
			t.Fatalf("ParseTOC refuses %x (%v), libopus decodes it", packet, err)
		case err == nil && n != toc.Samples():
			t.Fatalf("ParseTOC says %d samples, libopus decodes %d", toc.Samples(), n)
		}
	})
}
