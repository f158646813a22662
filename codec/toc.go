package codec

import (
	"errors"
	"fmt"
)

// ErrMalformedPacket reports an Opus packet that breaks RFC 6716 §3.
var ErrMalformedPacket = errors.New("codec: malformed opus packet")

// Mode is the Opus coding mode a packet's configuration selects.
type Mode uint8

// Opus coding modes (RFC 6716 §3.1, Table 2).
const (
	ModeSILK Mode = iota
	ModeHybrid
	ModeCELT
)

func (m Mode) String() string {
	switch m {
	case ModeSILK:
		return "silk"
	case ModeHybrid:
		return "hybrid"
	default:
		return "celt"
	}
}

// TOC is what an Opus packet's first byte and frame-count byte say about it.
type TOC struct {
	Config       uint8     // configuration number, 0..31
	Mode         Mode      // SILK, hybrid or CELT
	Bandwidth    Bandwidth // audio bandwidth the packet codes
	Stereo       bool      // the stereo flag
	FrameSamples int       // samples per frame at 48 kHz (120 to 2880)
	Frames       int       // frames in the packet (1 to 48)
}

// Samples is the packet's total duration in samples at 48 kHz.
func (t TOC) Samples() int { return t.FrameSamples * t.Frames }

// maxPacketSamples is the longest audio an Opus packet may carry: 120 ms.
const maxPacketSamples = 5760

// frameSamples per configuration (RFC 6716 Table 2), at 48 kHz.
var frameSamples = [32]int{
	480, 960, 1920, 2880, // SILK NB
	480, 960, 1920, 2880, // SILK MB
	480, 960, 1920, 2880, // SILK WB
	480, 960, // Hybrid SWB
	480, 960, // Hybrid FB
	120, 240, 480, 960, // CELT NB
	120, 240, 480, 960, // CELT WB
	120, 240, 480, 960, // CELT SWB
	120, 240, 480, 960, // CELT FB
}

// ParseTOC reads the TOC byte and, for code 3 packets, the frame-count byte
// of an Opus packet. It checks what can be checked without decoding: a
// missing frame-count byte, a zero frame count, a total over 120 ms.
func ParseTOC(packet []byte) (TOC, error) {
	if len(packet) == 0 {
		return TOC{}, fmt.Errorf("%w: empty", ErrMalformedPacket)
	}
	b := packet[0]
	cfg := b >> 3
	t := TOC{Config: cfg, Stereo: b&0x04 != 0, FrameSamples: frameSamples[cfg]}
	switch {
	case cfg < 12:
		t.Mode = ModeSILK
		t.Bandwidth = [3]Bandwidth{Narrowband, Mediumband, Wideband}[cfg/4]
	case cfg < 16:
		t.Mode = ModeHybrid
		t.Bandwidth = [2]Bandwidth{SuperWideband, Fullband}[(cfg-12)/2]
	default:
		t.Mode = ModeCELT
		t.Bandwidth = [4]Bandwidth{Narrowband, Wideband, SuperWideband, Fullband}[(cfg-16)/4]
	}
	switch b & 0x03 {
	case 0:
		t.Frames = 1
	case 1, 2:
		t.Frames = 2
	case 3:
		if len(packet) < 2 {
			return TOC{}, fmt.Errorf("%w: code 3 packet without frame count", ErrMalformedPacket)
		}
		t.Frames = int(packet[1] & 0x3f)
		if t.Frames == 0 {
			return TOC{}, fmt.Errorf("%w: code 3 packet with zero frames", ErrMalformedPacket)
		}
	}
	if t.Samples() > maxPacketSamples {
		return TOC{}, fmt.Errorf("%w: %d samples exceeds 120 ms", ErrMalformedPacket, t.Samples())
	}
	if err := checkFraming(packet, t.Frames); err != nil {
		return TOC{}, err
	}
	return t, nil
}

// maxFrameBytes is the largest compressed frame RFC 6716 allows.
const maxFrameBytes = 1275

// checkFraming applies the packet-framing rules of RFC 6716 §3.4 (R1–R7):
// frame lengths and padding must fit in the packet, so a packet that would
// make the decoder fail is refused before it is buffered.
func checkFraming(packet []byte, frames int) error {
	rest := packet[1:]
	bad := func(why string) error { return fmt.Errorf("%w: %s", ErrMalformedPacket, why) }
	switch packet[0] & 0x03 {
	case 0:
		if len(rest) > maxFrameBytes {
			return bad("frame longer than 1275 bytes")
		}
	case 1:
		if len(rest)%2 != 0 || len(rest)/2 > maxFrameBytes {
			return bad("code 1 packet with frames of unequal length")
		}
	case 2:
		n, used, ok := frameLength(rest)
		if !ok || n > len(rest)-used || len(rest)-used-n > maxFrameBytes {
			return bad("code 2 frame length past the end")
		}
	case 3:
		vbr, padded := rest[0]&0x80 != 0, rest[0]&0x40 != 0
		rest = rest[1:]
		if padded {
			pad := 0
			for {
				if len(rest) == 0 {
					return bad("code 3 padding length past the end")
				}
				b := int(rest[0])
				rest = rest[1:]
				if b == 255 {
					pad += 254
					continue
				}
				pad += b
				break
			}
			if pad > len(rest) {
				return bad("code 3 padding past the end")
			}
			rest = rest[:len(rest)-pad]
		}
		if !vbr {
			if len(rest)%frames != 0 || len(rest)/frames > maxFrameBytes {
				return bad("code 3 CBR frames of unequal length")
			}
			return nil
		}
		// VBR: the lengths of all frames but the last come first.
		sum := 0
		for range frames - 1 {
			n, used, ok := frameLength(rest)
			if !ok || n > maxFrameBytes {
				return bad("code 3 frame length past the end")
			}
			rest = rest[used:]
			sum += n
		}
		if sum > len(rest) {
			return bad("code 3 frame length past the end")
		}
		if len(rest)-sum > maxFrameBytes {
			return bad("code 3 last frame longer than 1275 bytes")
		}
	}
	return nil
}

// frameLength reads an Opus frame length (one or two bytes, §3.2.1).
func frameLength(b []byte) (n, used int, ok bool) {
	switch {
	case len(b) == 0:
		return 0, 0, false
	case b[0] < 252:
		return int(b[0]), 1, true
	case len(b) < 2:
		return 0, 0, false
	default:
		return int(b[0]) + 4*int(b[1]), 2, true
	}
}

// PacketSamples is the duration of an Opus packet in samples at 48 kHz.
func PacketSamples(packet []byte) (int, error) {
	t, err := ParseTOC(packet)
	if err != nil {
		return 0, err
	}
	return t.Samples(), nil
}

// HasFEC reports whether an Opus packet carries in-band FEC (SILK's LBRR
// data) for the frame before it, so that decoding FEC from it rebuilds a
// lost frame rather than concealing it. The LBRR flag follows the VAD flags
// as the first symbols of the SILK layer, coded with even odds, so it reads
// as a bit of the byte after the TOC (RFC 6716 §4.2.3–4.2.4), as WebRTC's
// PacketHasFec does. It answers for mono SILK and hybrid packets of one or
// two equal frames, the shape in-band FEC comes in; false otherwise.
func HasFEC(packet []byte) bool {
	t, err := ParseTOC(packet)
	if err != nil || t.Mode == ModeCELT || t.Stereo || packet[0]&0x03 > 1 || len(packet) < 2 {
		return false
	}
	silkFrames := max(1, t.FrameSamples/FrameSamples) // one VAD flag per 20 ms
	return packet[1]&(0x80>>silkFrames) != 0
}
