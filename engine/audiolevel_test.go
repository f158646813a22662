package engine_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/engine"
)

// levelPacket is an Opus RTP packet by hand: seq, and the header
// extension ext (profile, then its elements, padded to 32-bit words) when
// set; words overrides the extension's length in words when not 0.
func levelPacket(seq uint16, opus []byte, profile uint16, ext []byte, words int) []byte {
	b := make([]byte, 12, 64)
	b[0], b[1] = 0x80, 111
	binary.BigEndian.PutUint16(b[2:], seq)
	binary.BigEndian.PutUint32(b[4:], uint32(seq)*codec.FrameSamples)
	binary.BigEndian.PutUint32(b[8:], 0xC0FFEE)
	if ext != nil {
		b[0] |= 0x10
		for len(ext)%4 != 0 {
			ext = append(ext, 0)
		}
		if words == 0 {
			words = len(ext) / 4
		}
		b = binary.BigEndian.AppendUint16(b, profile)
		b = binary.BigEndian.AppendUint16(b, uint16(words))
		b = append(b, ext...)
	}
	return append(b, opus...)
}

// TestReportedAudioLevel: a speaker whose config names the RFC 6464
// extension id shows the level and voice activity its packets report;
// extensions of the wrong size are counted and ignored, one that overruns
// the packet makes it malformed, and none of it panics. A speaker without
// the id shows nothing, whatever its packets carry.
func TestReportedAudioLevel(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{})
	p, err := r.room.Join("alice", engine.ParticipantConfig{Role: engine.Speaker, AudioLevelExtID: 3})
	if err != nil {
		t.Fatal(err)
	}
	q, err := r.room.Join("bob", engine.ParticipantConfig{Role: engine.Speaker})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.NewEncoder(codec.EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var pcm [codec.FrameSamples]int16
	buf := make([]byte, 1500)
	n, err := enc.Encode(pcm[:], buf)
	if err != nil {
		t.Fatal(err)
	}
	opus := buf[:n]
	const oneByte, twoByte = 0xBEDE, 0x1000
	reported := func(p *engine.Participant) (bool, uint8, bool) {
		st := p.Stats()
		return st.LevelReported, st.ReportedLevel, st.VoiceActivity
	}
	if ok, _, _ := reported(p); ok {
		t.Fatal("a level reported before any packet")
	}
	steps := []struct {
		name     string
		pkt      []byte
		err      error
		ok       bool
		level    uint8
		vad      bool
		badSoFar uint64
	}{
		{"voice at -30 dBov", levelPacket(1, opus, oneByte, []byte{3<<4 | 0, 0x80 | 30}, 0), nil, true, 30, true, 0},
		{"no extension", levelPacket(2, opus, 0, nil, 0), nil, true, 30, true, 0},
		{"other ids only", levelPacket(3, opus, oneByte, []byte{1<<4 | 0, 99, 2<<4 | 1, 1, 2}, 0), nil, true, 30, true, 0},
		{"silence, with another id first", levelPacket(4, opus, oneByte, []byte{1<<4 | 0, 99, 3<<4 | 0, 127}, 0), nil, true, 127, false, 0},
		{"two bytes", levelPacket(5, opus, oneByte, []byte{3<<4 | 1, 0x80 | 10, 0}, 0), nil, true, 127, false, 1},
		{"empty, two-byte form", levelPacket(6, opus, twoByte, []byte{3, 0}, 0), nil, true, 127, false, 2},
		{"two-byte form", levelPacket(7, opus, twoByte, []byte{3, 1, 0x80 | 50}, 0), nil, true, 50, true, 2},
		{"extension past the end", levelPacket(8, nil, oneByte, []byte{3<<4 | 0, 20}, 9), engine.ErrMalformedRTP, true, 50, true, 2},
		{"extension header cut short", levelPacket(9, nil, oneByte, []byte{3<<4 | 0, 20}, 0)[:14], engine.ErrMalformedRTP, true, 50, true, 2},
	}
	for _, s := range steps {
		if err := p.WriteRTP(s.pkt); !errors.Is(err, s.err) {
			t.Errorf("%s: WriteRTP %v, want %v", s.name, err, s.err)
		}
		ok, level, vad := reported(p)
		if ok != s.ok || level != s.level || vad != s.vad {
			t.Errorf("%s: reported %v, level %d, voice %v; want %v %d %v", s.name, ok, level, vad, s.ok, s.level, s.vad)
		}
		if bad := r.room.Counters().BadAudioLevels; bad != s.badSoFar {
			t.Errorf("%s: %d bad audio levels, want %d", s.name, bad, s.badSoFar)
		}
	}
	if err := q.WriteRTP(levelPacket(1, opus, oneByte, []byte{3<<4 | 0, 0x80 | 30}, 0)); err != nil {
		t.Fatal(err)
	}
	if ok, _, _ := reported(q); ok {
		t.Error("a speaker without AudioLevelExtID shows a reported level")
	}

	// Reading the level allocates nothing.
	pkt := levelPacket(100, opus, oneByte, []byte{1<<4 | 0, 99, 3<<4 | 0, 0x80 | 40}, 0)
	seq := uint16(100)
	allocs := testing.AllocsPerRun(200, func() {
		seq++
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*codec.FrameSamples)
		_ = p.WriteRTP(pkt)
	})
	if allocs != 0 {
		t.Errorf("WriteRTP with an audio level: %.1f allocs", allocs)
	}
	if _, level, _ := reported(p); level != 40 {
		t.Errorf("level %d after the allocation run", level)
	}
}

// BenchmarkWriteRTPAudioLevel: a speaker's packet with an RFC 6464
// extension, read (AudioLevelExtID set) or not.
func BenchmarkWriteRTPAudioLevel(b *testing.B) {
	for _, id := range []uint8{0, 3} {
		b.Run(map[uint8]string{0: "ignored", 3: "read"}[id], func(b *testing.B) {
			eng := engine.New(engine.Config{})
			b.Cleanup(eng.Close)
			room, err := eng.NewRoom("bench", engine.RoomConfig{})
			if err != nil {
				b.Fatal(err)
			}
			p, err := room.Join("alice", engine.ParticipantConfig{Role: engine.Speaker, AudioLevelExtID: id})
			if err != nil {
				b.Fatal(err)
			}
			opus := []byte{0xF8, 0xFF, 0xFE}
			pkt := levelPacket(1, opus, 0xBEDE, []byte{1<<4 | 0, 99, 3<<4 | 0, 0x80 | 40}, 0)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				binary.BigEndian.PutUint16(pkt[2:], uint16(i))
				binary.BigEndian.PutUint32(pkt[4:], uint32(i)*codec.FrameSamples)
				_ = p.WriteRTP(pkt)
			}
		})
	}
}
