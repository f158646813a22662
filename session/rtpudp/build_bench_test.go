package rtpudp

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

// BenchmarkRoomBuild is the Go side of a large room's tick as a server
// runs it: the engine building one packet for each of 3,200 listeners
// whose sinks are this package's peers, one speaker talking. In "cold",
// 32 MB are written before each tick, as 20 ms of the kernel's sends and
// other rooms' work would, so that each listener's state comes from
// memory as on a busy server; "hot" leaves it in the caches.
// build-ns/listener is the tick's build (from its start to
// its Send: the mix, one encode, and every listener's header queued)
// over the listeners; the sends, the kernel's work, are not in it.
func BenchmarkRoomBuild(b *testing.B) {
	b.Run("cold", func(b *testing.B) { benchmarkRoomBuild(b, 32<<20) })
	b.Run("hot", func(b *testing.B) { benchmarkRoomBuild(b, 0) })
}

func benchmarkRoomBuild(b *testing.B, evictBytes int) {
	const listeners = 3200
	tr := listen(b)
	ports := wildcardPorts(b, 16)
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	evict := make([]byte, evictBytes)
	var start, built time.Time
	eng := engine.New(engine.Config{Now: clock.Now, Workers: 1, BeforeTick: func() {
		for i := 0; i < len(evict); i += 64 {
			evict[i]++
		}
		start = time.Now()
	}})
	defer eng.Close()
	batch := tr.NewBatch()
	room, err := eng.NewRoom("bench", engine.RoomConfig{Send: func(part, parts int) {
		if part == 0 {
			built = time.Now()
		}
		batch.SendPart(part, parts)
	}})
	if err != nil {
		b.Fatal(err)
	}
	spk, err := room.Join("speaker", engine.ParticipantConfig{Role: engine.Speaker})
	if err != nil {
		b.Fatal(err)
	}
	for i := range listeners {
		remote, to := manyAddrs(i, ports)
		p, err := tr.AddPeer(remote, to, batch)
		if err != nil {
			b.Fatal(err)
		}
		p.confirmed.Store(true) // as if it had sent RTCP
		if _, err := room.Join(fmt.Sprint("l", i), engine.ParticipantConfig{Sink: p}); err != nil {
			b.Fatal(err)
		}
	}
	enc, err := codec.NewEncoder(codec.EncoderConfig{})
	if err != nil {
		b.Fatal(err)
	}
	var pcm [codec.FrameSamples]int16
	pkt := make([]byte, 12+codec.MaxPacketBytes)
	seq := uint16(0)
	tick := func() {
		signal.Tone(pcm[:], 440, 8000, int(seq)*codec.FrameSamples)
		n, err := enc.Encode(pcm[:], pkt[12:])
		if err != nil {
			b.Fatal(err)
		}
		pkt[0], pkt[1] = 0x80, 111
		binary.BigEndian.PutUint16(pkt[2:], seq)
		binary.BigEndian.PutUint32(pkt[4:], uint32(seq)*codec.FrameSamples)
		binary.BigEndian.PutUint32(pkt[8:], 0x5EED)
		seq++
		if err := spk.WriteRTP(pkt[:12+n]); err != nil {
			b.Fatal(err)
		}
		clock.Advance(engine.TickInterval)
		eng.Tick()
	}
	for range 100 { // the jitter buffer starts
		tick()
	}
	var building time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		tick()
		building += built.Sub(start)
	}
	b.ReportMetric(float64(building.Nanoseconds())/float64(b.N)/listeners, "build-ns/listener")
	if st := tr.Stats(); st.PacketsOut == 0 {
		b.Fatal("nothing sent")
	}
}
