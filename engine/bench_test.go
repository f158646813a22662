package engine_test

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/internal/fakeclock"
)

// benchSpeaker replays pre-encoded packets with a fresh RTP header each
// tick: encoding is the client's work, not the engine's.
type benchSpeaker struct {
	p       *engine.Participant
	packets [][]byte
	next    int
	seq     uint16
	ts      uint32
	buf     [1500]byte
}

func (s *benchSpeaker) send() error {
	payload := s.packets[s.next%len(s.packets)]
	s.next++
	b := s.buf[:12+len(payload)]
	b[0], b[1] = 0x80, 111
	binary.BigEndian.PutUint16(b[2:], s.seq)
	binary.BigEndian.PutUint32(b[4:], s.ts)
	binary.BigEndian.PutUint32(b[8:], 0x5EED)
	copy(b[12:], payload)
	s.seq++
	s.ts += codec.FrameSamples
	return s.p.WriteRTP(b)
}

// encodeSpeech pre-encodes frames of a voice for one speaker: a tone
// whose loudness moves like syllables, or silence when quiet.
func encodeSpeech(b *testing.B, freq float64, frames int, quiet bool) [][]byte {
	enc, err := codec.NewEncoder(codec.EncoderConfig{})
	if err != nil {
		b.Fatal(err)
	}
	var pcm [codec.FrameSamples]int16
	out := make([][]byte, frames)
	for i := range out {
		if quiet {
			clear(pcm[:])
		} else {
			amp := 4000 + 8000*float64(i%12)/12 // a 240 ms syllable rhythm
			signal.Tone(pcm[:], freq, amp, i*codec.FrameSamples)
		}
		buf := make([]byte, codec.MaxPacketBytes)
		n, err := enc.Encode(pcm[:], buf)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = buf[:n]
	}
	return out
}

// BenchmarkRoomTick is one room's 20 ms tick: 5 speakers on stage, 3 of
// them talking, and 10,000 listeners whose sinks count bytes.
func BenchmarkRoomTick(b *testing.B) {
	for _, listeners := range []int{0, 10000} {
		b.Run(fmt.Sprintf("speakers=5/active=3/listeners=%d", listeners), func(b *testing.B) {
			benchmarkRoomTick(b, 5, 3, listeners)
		})
	}
}

func benchmarkRoomTick(b *testing.B, speakers, active, listeners int) {
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	eng := engine.New(engine.Config{Now: clock.Now, Workers: 1})
	defer eng.Close()
	room, err := eng.NewRoom("bench", engine.RoomConfig{})
	if err != nil {
		b.Fatal(err)
	}
	var bytes, packets uint64
	sink := engine.SinkFunc(func(h, payload []byte) error {
		bytes += uint64(len(h) + len(payload))
		packets++
		return nil
	})
	var talkers []*benchSpeaker
	for i := range speakers {
		p, err := room.Join(fmt.Sprintf("s%d", i), engine.ParticipantConfig{Role: engine.Speaker, Sink: sink})
		if err != nil {
			b.Fatal(err)
		}
		talkers = append(talkers, &benchSpeaker{p: p, packets: encodeSpeech(b, 300+float64(i)*210, 50, i >= active)})
	}
	for i := range listeners {
		if _, err := room.Join(fmt.Sprintf("l%d", i), engine.ParticipantConfig{Sink: sink}); err != nil {
			b.Fatal(err)
		}
	}
	tick := func() {
		for _, s := range talkers {
			if err := s.send(); err != nil {
				b.Fatal(err)
			}
		}
		clock.Advance(engine.TickInterval)
		eng.Tick()
	}
	for range 100 { // jitter buffers start, private encoders settle
		tick()
	}
	before := room.Counters()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		tick()
	}
	elapsed := time.Since(start)
	b.StopTimer()
	after := room.Counters()
	perTick := float64(elapsed.Nanoseconds()) / float64(b.N)
	b.ReportMetric(perTick/1e3, "µs/tick")
	if listeners > 0 {
		b.ReportMetric(perTick/float64(listeners), "ns/listener")
	}
	b.ReportMetric(float64(after.Encodes-before.Encodes)/float64(b.N), "encodes/tick")
	b.ReportMetric(float64(after.Decodes-before.Decodes)/float64(b.N), "decodes/tick")
	if packets == 0 && listeners > 0 {
		b.Fatal("listeners received nothing")
	}
}
