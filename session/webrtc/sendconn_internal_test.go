package webrtc

import "testing"

// Only SRTP media waits for a flush: STUN (consent checks), DTLS and
// SRTCP go out at once.
func TestIsRTP(t *testing.T) {
	pad := func(b ...byte) []byte { return append(b, make([]byte, 12)...) }
	for _, c := range []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"RTP, PT 111", pad(0x80, 111), true},
		{"RTP, marker, PT 63", pad(0x80, 0x80|63), true},
		{"SRTCP sender report", pad(0x81, 200), false},
		{"SRTCP NACK", pad(0x81, 205), false},
		{"STUN binding request", pad(0x00, 0x01), false},
		{"DTLS record", pad(22, 0xfe), false},
		{"TURN channel data", pad(0x40, 0x00), false},
		{"too short for RTP", []byte{0x80, 111, 0, 1}, false},
	} {
		if got := isRTP(c.pkt); got != c.want {
			t.Errorf("%s: isRTP = %v, want %v", c.name, got, c.want)
		}
	}
}
