package jitter_test

import (
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/jitter"
)

// FuzzPush feeds a buffer a stream whose sequence numbers, timestamps,
// SSRCs, arrival gaps and payloads come from the fuzzer, popping between
// packets: it never panics, never answers more than a tick at a time,
// and its counters stay consistent (nothing discarded that was not
// received, no negative level).
func FuzzPush(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 20, 0x48, 0, 2, 0, 0, 20, 0x48, 0x75, 0x30, 0, 0, 20, 0x48})
	f.Add([]byte{0, 1, 0, 0, 20, 0x48, 0, 1, 0x01, 0x77, 20, 0x48, 0, 1, 0, 0, 20, 0x48})
	f.Fuzz(func(t *testing.T, data []byte) {
		b := jitter.New(jitter.Config{})
		now := time.Unix(1_700_000_000, 0)
		var seq uint16
		var ts uint32
		var pkt rtp.Packet
		for len(data) >= 6 {
			rec := data[:6]
			data = data[6:]
			seq += uint16(rec[0])<<8 | uint16(rec[1])
			ts += uint32(rec[2])<<16 | uint32(rec[3])<<8
			now = now.Add(time.Duration(rec[4]) * time.Millisecond)
			pkt.Header = rtp.Header{Version: 2, PayloadType: 111, SSRC: uint32(rec[5] >> 7), SequenceNumber: seq, Timestamp: ts}
			pkt.Payload = []byte{rec[5] & 0x7f << 1, 0xff, 0xfe}
			b.Push(&pkt, now)
			if f := b.Pop(now); f.Samples <= 0 || f.Samples > 5760 {
				t.Fatalf("Pop answered %d samples", f.Samples)
			}
		}
		st := b.Stats()
		if st.PacketsDiscarded > st.PacketsReceived+st.PacketsOutlier || st.BufferLevel < 0 {
			t.Fatalf("inconsistent counters: %+v", st)
		}
	})
}
