package sim

import (
	"encoding/binary"
	"math"
	"slices"
	"time"

	"github.com/handsup-audio/handsup/engine"
)

// DTXKeepAlive is how often, in frames, a silent sender still sends a DTX
// packet: every 400 ms, as WebRTC does.
const DTXKeepAlive = int(400 * time.Millisecond / engine.TickInterval)

// PutRTPHeader writes a 12-byte RTP header (version 2, no CSRC) into b, as
// the simulated clients send it.
func PutRTPHeader(b []byte, pt uint8, marker bool, seq uint16, ts, ssrc uint32) {
	b[0] = 0x80
	b[1] = pt & 0x7f
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], ssrc)
}

// SplitMix returns a SplitMix64 generator: the simulated clients' SSRCs
// and initial sequence numbers, and the links' seeds, deterministic per
// seed.
func SplitMix(seed uint64) func() uint64 {
	x := seed
	return func() uint64 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		return z ^ z>>31
	}
}

// Round rounds x to digits decimal places, for reports.
func Round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// Percentile is the nearest-rank q-quantile of d (q in 0..1); 0 for no
// data.
func Percentile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(len(s)-1, max(0, i))]
}
