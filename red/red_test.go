package red

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	older := Block{PayloadType: 111, TSOffset: 1920, Data: []byte("frame t-2")}
	old := Block{PayloadType: 111, TSOffset: 960, Data: []byte("frame t-1")}
	pkt := Append(nil, 111, []byte("frame t"), older, old)
	if len(pkt) != 4+4+1+len("frame t-2")+len("frame t-1")+len("frame t") {
		t.Fatalf("length %d", len(pkt))
	}
	pt, primary, blocks, err := Parse(pkt, make([]Block, 0, 2))
	if err != nil {
		t.Fatal(err)
	}
	if pt != 111 || string(primary) != "frame t" || len(blocks) != 2 {
		t.Fatalf("pt %d primary %q blocks %d", pt, primary, len(blocks))
	}
	for i, want := range []Block{older, old} {
		got := blocks[i]
		if got.PayloadType != want.PayloadType || got.TSOffset != want.TSOffset || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("block %d: %+v, want %+v", i, got, want)
		}
	}
}

func TestPrimaryOnly(t *testing.T) {
	pkt := Append(nil, 100, []byte{1, 2, 3})
	if !bytes.Equal(pkt, []byte{100, 1, 2, 3}) {
		t.Fatalf("%x", pkt)
	}
	pt, primary, blocks, err := Parse(pkt, nil)
	if err != nil || pt != 100 || !bytes.Equal(primary, []byte{1, 2, 3}) || len(blocks) != 0 {
		t.Fatalf("%d %x %v %v", pt, primary, blocks, err)
	}
}

func TestAppendSkipsWhatDoesNotFit(t *testing.T) {
	tooLong := Block{PayloadType: 111, TSOffset: 960, Data: make([]byte, MaxBlockBytes+1)}
	tooOld := Block{PayloadType: 111, TSOffset: MaxTSOffset + 1, Data: []byte{1}}
	empty := Block{PayloadType: 111, TSOffset: 960}
	pkt := Append(nil, 111, []byte{9}, tooLong, tooOld, empty)
	if !bytes.Equal(pkt, []byte{111, 9}) {
		t.Fatalf("%x", pkt)
	}
}

func TestMalformed(t *testing.T) {
	for name, p := range map[string][]byte{
		"empty":             {},
		"header cut":        {0x80 | 111, 0, 0},
		"no primary header": {0x80 | 111, 0x0f, 0x00, 0x00},
		"block past end":    {0x80 | 111, 0x0f, 0x00, 0x10, 111, 1, 2},
		"too many blocks":   bytes.Repeat([]byte{0x80 | 111, 0, 0, 0}, MaxBlocks+1),
	} {
		if _, _, _, err := Parse(p, nil); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(Append(nil, 111, []byte("p"), Block{PayloadType: 111, TSOffset: 960, Data: []byte("r")}))
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, p []byte) {
		pt, primary, blocks, err := Parse(p, nil)
		if err != nil {
			return
		}
		// What parses rebuilds to the same bytes.
		if again := Append(nil, pt, primary, blocks...); len(blocks) > 0 && allFit(blocks) && !bytes.Equal(again, p) {
			t.Fatalf("rebuilt %x from %x", again, p)
		}
	})
}

func allFit(bs []Block) bool {
	for _, b := range bs {
		if !fits(b) {
			return false
		}
	}
	return true
}

func TestParseDoesNotAllocate(t *testing.T) {
	pkt := Append(nil, 111, []byte("p"), Block{PayloadType: 111, TSOffset: 960, Data: []byte("r")})
	blocks := make([]Block, 0, MaxBlocks)
	if n := testing.AllocsPerRun(100, func() { _, _, _, _ = Parse(pkt, blocks[:0]) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
