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
	return t, nil
}

// PacketSamples is the duration of an Opus packet in samples at 48 kHz.
func PacketSamples(packet []byte) (int, error) {
	t, err := ParseTOC(packet)
	if err != nil {
		return 0, err
	}
	return t.Samples(), nil
}
