package red

import "errors"

// Limits of the RFC 2198 block header.
const (
	MaxBlockBytes = 1023  // a redundant block's length field has 10 bits
	MaxTSOffset   = 16383 // its timestamp offset field has 14 bits
	MaxBlocks     = 8     // redundant blocks Parse reports; more is malformed here
)

// ErrMalformed is what Parse returns for a payload that is not RED.
var ErrMalformed = errors.New("red: malformed RED payload")

// Block is one redundant encoding: its payload type, how many timestamp
// units it precedes the primary by, and its data.
type Block struct {
	PayloadType uint8
	TSOffset    uint32
	Data        []byte
}

// Append appends a RED payload to dst: the redundant blocks, oldest first,
// then the primary of payload type pt. Blocks too long or too far back for
// the header fields are left out. It returns the extended slice.
func Append(dst []byte, pt uint8, primary []byte, redundant ...Block) []byte {
	for _, b := range redundant {
		if fits(b) {
			dst = append(dst, 0x80|b.PayloadType&0x7f,
				byte(b.TSOffset>>6), byte(b.TSOffset<<2)|byte(len(b.Data)>>8), byte(len(b.Data)))
		}
	}
	dst = append(dst, pt&0x7f)
	for _, b := range redundant {
		if fits(b) {
			dst = append(dst, b.Data...)
		}
	}
	return append(dst, primary...)
}

func fits(b Block) bool {
	return len(b.Data) > 0 && len(b.Data) <= MaxBlockBytes && b.TSOffset <= MaxTSOffset
}

// Parse splits a RED payload into its redundant blocks (appended to
// blocks, oldest first) and its primary. The slices point into payload; it
// does not allocate when blocks has room.
func Parse(payload []byte, blocks []Block) (primaryPT uint8, primary []byte, out []Block, err error) {
	var lens [MaxBlocks]int
	out = blocks
	i, k := 0, 0
	for {
		if i >= len(payload) {
			return 0, nil, blocks, ErrMalformed
		}
		if payload[i]&0x80 == 0 { // the primary's one-byte header
			primaryPT = payload[i] & 0x7f
			i++
			break
		}
		if i+4 > len(payload) || k == MaxBlocks {
			return 0, nil, blocks, ErrMalformed
		}
		h := payload[i : i+4]
		out = append(out, Block{PayloadType: h[0] & 0x7f, TSOffset: uint32(h[1])<<6 | uint32(h[2])>>2})
		lens[k] = int(h[2]&0x03)<<8 | int(h[3])
		i += 4
		k++
	}
	for j := range k {
		n := lens[j]
		if i+n > len(payload) {
			return 0, nil, blocks, ErrMalformed
		}
		out[len(blocks)+j].Data = payload[i : i+n]
		i += n
	}
	return primaryPT, payload[i:], out, nil
}
