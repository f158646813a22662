package red

import (
	"bytes"
	"errors"
	"testing"

	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/codec"
)

// Opus packets of one frame (RFC 6716 code 0) whose last byte tags them.
func opus20(tag byte) []byte { return []byte{9 << 3, 0xff, tag} }  // SILK WB 20 ms
func opus60(tag byte) []byte { return []byte{11 << 3, 0xff, tag} } // SILK WB 60 ms

func redPacket(seq uint16, ts uint32, payload []byte) *rtp.Packet {
	return &rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 63, SequenceNumber: seq, Timestamp: ts, SSRC: 0xCAFE, Marker: true},
		Payload: payload,
	}
}

func TestUnwrap(t *testing.T) {
	type want struct {
		seq  uint16
		ts   uint32
		data []byte
	}
	for _, tc := range []struct {
		name    string
		seq     uint16
		ts      uint32
		primary []byte
		blocks  []Block
		copies  []want
	}{
		{
			name: "distance 2", seq: 500, ts: 48000, primary: opus20(3),
			blocks: []Block{{111, 1920, opus20(1)}, {111, 960, opus20(2)}},
			copies: []want{{498, 46080, opus20(1)}, {499, 47040, opus20(2)}},
		},
		{
			name: "sequence and timestamp wrap", seq: 0, ts: 100, primary: opus20(3),
			blocks: []Block{{111, 960, opus20(2)}},
			copies: []want{{65535, 1<<32 + 100 - 960, opus20(2)}},
		},
		{
			name: "60 ms packets", seq: 10, ts: 10000, primary: opus60(3),
			blocks: []Block{{111, 2880, opus60(2)}},
			copies: []want{{9, 10000 - 2880, opus60(2)}},
		},
		{
			name: "other codecs and partial offsets left out", seq: 10, ts: 10000, primary: opus20(3),
			blocks: []Block{{0, 960, []byte{1, 2}}, {111, 480, opus20(9)}, {111, 960, opus20(2)}},
			copies: []want{{9, 10000 - 960, opus20(2)}},
		},
		{name: "primary only", seq: 10, ts: 10000, primary: opus20(3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := redPacket(tc.seq, tc.ts, Append(nil, 111, tc.primary, tc.blocks...))
			var u Unwrapper
			copies, err := u.Unwrap(pkt, 111)
			if err != nil {
				t.Fatal(err)
			}
			if pkt.PayloadType != 111 || !bytes.Equal(pkt.Payload, tc.primary) ||
				pkt.SequenceNumber != tc.seq || pkt.Timestamp != tc.ts || pkt.SSRC != 0xCAFE {
				t.Errorf("primary: %v %x, want the Opus packet under the same header", pkt.Header, pkt.Payload)
			}
			if len(copies) != len(tc.copies) {
				t.Fatalf("%d copies, want %d", len(copies), len(tc.copies))
			}
			for i, w := range tc.copies {
				c := copies[i]
				if c.SequenceNumber != w.seq || c.Timestamp != w.ts || c.PayloadType != 111 ||
					c.SSRC != 0xCAFE || !bytes.Equal(c.Payload, w.data) {
					t.Errorf("copy %d: seq %d ts %d pt %d ssrc %x %x; want seq %d ts %d %x",
						i, c.SequenceNumber, c.Timestamp, c.PayloadType, c.SSRC, c.Payload, w.seq, w.ts, w.data)
				}
			}
		})
	}
}

// An empty block (length 0), which Append never writes, is left out.
func TestUnwrapSkipsEmptyBlock(t *testing.T) {
	payload := append([]byte{0x80 | 111, 960 >> 6, (960 << 2) & 0xff, 0, 111}, opus20(3)...)
	var u Unwrapper
	copies, err := u.Unwrap(redPacket(1, 960, payload), 111)
	if err != nil || len(copies) != 0 {
		t.Fatalf("%d copies, %v; want none", len(copies), err)
	}
}

func TestUnwrapMalformed(t *testing.T) {
	for name, payload := range map[string][]byte{
		"not RED":            {0x80},
		"primary of type 0":  Append(nil, 0, opus20(1)),
		"empty primary":      Append(nil, 111, nil, Block{111, 960, opus20(1)}),
		"primary is no Opus": Append(nil, 111, []byte{3}),
	} {
		pkt := redPacket(7, 7000, payload)
		var u Unwrapper
		if _, err := u.Unwrap(pkt, 111); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
		if pkt.PayloadType != 63 || !bytes.Equal(pkt.Payload, payload) {
			t.Errorf("%s: the packet changed", name)
		}
	}
}

func TestUnwrapDoesNotAllocate(t *testing.T) {
	payload := Append(nil, 111, opus20(3), Block{111, 1920, opus20(1)}, Block{111, 960, opus20(2)})
	var u Unwrapper
	pkt := redPacket(500, 48000, nil)
	allocs := testing.AllocsPerRun(100, func() {
		pkt.Payload, pkt.PayloadType = payload, 63
		if copies, err := u.Unwrap(pkt, 111); err != nil || len(copies) != 2 {
			t.Fatal(len(copies), err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per Unwrap", allocs)
	}
}

func BenchmarkUnwrap(b *testing.B) {
	payload := Append(nil, 111, opus20(3), Block{111, 960, opus20(2)})
	var u Unwrapper
	pkt := redPacket(500, 48000, nil)
	b.ReportAllocs()
	for range b.N {
		pkt.Payload, pkt.PayloadType = payload, 63
		_, _ = u.Unwrap(pkt, 111)
	}
}

// FuzzUnwrap: whatever a RED payload holds, Unwrap refuses it leaving the
// packet as it was, or yields a primary that is a whole Opus packet and
// copies each a whole number of the primary's packets back, inside the
// payload it was given.
func FuzzUnwrap(f *testing.F) {
	f.Add(Append(nil, 111, opus20(1), Block{PayloadType: 111, TSOffset: 960, Data: opus20(0)}), uint8(111))
	f.Add(Append(nil, 111, opus60(1), Block{PayloadType: 111, TSOffset: 960, Data: opus20(0)}), uint8(111))
	f.Add(Append(nil, 111, opus20(2), Block{PayloadType: 0, TSOffset: 960, Data: []byte{1}},
		Block{PayloadType: 111, TSOffset: 1920, Data: opus20(0)}), uint8(111))
	f.Add([]byte{0x80 | 111, 0xff, 0xff, 0xff, 111}, uint8(111))
	f.Fuzz(func(t *testing.T, payload []byte, pt uint8) {
		var u Unwrapper
		pkt := redPacket(100, 96000, append([]byte(nil), payload...))
		orig := pkt.Header
		copies, err := u.Unwrap(pkt, pt)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || !bytes.Equal(pkt.Payload, payload) || pkt.PayloadType != orig.PayloadType {
				t.Fatalf("refused (%v) but changed the packet", err)
			}
			return
		}
		dur, err := codec.PacketSamples(pkt.Payload)
		if err != nil || pkt.PayloadType != pt {
			t.Fatalf("primary %x (pt %d) is not an Opus packet of pt %d: %v", pkt.Payload, pkt.PayloadType, pt, err)
		}
		for _, c := range copies {
			back := orig.Timestamp - c.Timestamp
			if back == 0 || back%uint32(dur) != 0 || uint16(back/uint32(dur)) != orig.SequenceNumber-c.SequenceNumber {
				t.Fatalf("a copy %d samples and %d packets back, primary of %d samples", back, orig.SequenceNumber-c.SequenceNumber, dur)
			}
			if len(c.Payload) == 0 || c.PayloadType != pt || len(c.Payload) > len(payload) {
				t.Fatalf("copy payload %x pt %d", c.Payload, c.PayloadType)
			}
		}
	})
}
