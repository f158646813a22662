package engine

import (
	"bytes"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
)

// A tick that runs late plays its rooms' speakers as of its slot: a
// late tick that finds what it would have found on time plays exactly
// what it would have played, the playout level its jitter buffers steer
// included. Read at the late run, the level looked as high as the tick
// was late; a Player sped its audio up to bring it down, and when that
// took the level under the band it holds, the packet due at the next
// tick, on time, had to arrive ahead of the fastest of the last two
// seconds: on a server of 100 rooms in 4 phases, the speakers of a phase
// whose tick ran 4-7 ms late were concealed at its next (3-38 events a
// run).
//
// Two rooms on two engines take the same speaker's packets, arriving
// 10-14 ms after each slot; one room's engine runs one tick in 25 7 ms
// late. Both must send the listener the same packets and hold the same
// playout level after every tick.
func TestLateTickPlaysAsOfItsSlot(t *testing.T) {
	const (
		ticks = 1500
		every = 25 // one tick in every runs late
		late  = 7 * time.Millisecond
	)
	start := time.Unix(1_700_000_000, 0)
	var heard [2][]byte // each listener's last packet
	newSide := func(i int) *twin {
		return newTwin(t, start, func(header, payload []byte) error {
			heard[i] = append(heard[i][:0], payload...)
			return nil
		})
	}
	onTime, lateSide := newSide(0), newSide(1)
	enc, err := codec.NewEncoder(codec.EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}

	var pcm [codec.FrameSamples]int16
	arrival := func(i int) time.Time { // 10-14 ms after slot i
		return start.Add(time.Duration(i)*TickInterval + 10*time.Millisecond + time.Duration(uint32(i)*2654435761%4000)*time.Microsecond)
	}
	sent := 0
	send := func(by time.Time) { // every packet that has arrived by then, to both
		for ; !arrival(sent).After(by); sent++ {
			signal.Tone(pcm[:], 440, 8000, sent*codec.FrameSamples)
			pkt := opusPacket(t, enc, pcm[:], sent, 7)
			for _, s := range []*twin{onTime, lateSide} {
				s.clock.Set(arrival(sent))
				if err := s.speaker.WriteRTP(pkt); err != nil {
					t.Fatalf("packet %d: %v", sent, err)
				}
			}
		}
	}
	lateTicks := 0
	for k := 1; k <= ticks; k++ {
		slot := start.Add(time.Duration(k) * TickInterval)
		lateness := time.Duration(0)
		if k%every == 0 {
			lateness = late
			lateTicks++
		}
		send(slot)
		onTime.clock.Set(slot)
		onTime.e.tickPhase(onTime.e.phases[0], 0)
		lateSide.clock.Set(slot.Add(lateness))
		lateSide.e.tickPhase(lateSide.e.phases[0], lateness)

		a, b := onTime.r.Snapshot(), lateSide.r.Snapshot()
		if la, lb := a.Speakers[0].Jitter.PlayoutLevel, b.Speakers[0].Jitter.PlayoutLevel; la != lb {
			t.Fatalf("tick %d (%v late): playout level %v, on time %v", k, lateness, lb, la)
		}
		if !bytes.Equal(heard[0], heard[1]) {
			t.Fatalf("tick %d (%v late): the listener heard another packet than on time", k, lateness)
		}
	}
	js := lateSide.r.Snapshot().Jitter
	if js.PacketsReceived < ticks || js.JitterBufferEmittedCount < (ticks-10)*codec.FrameSamples {
		t.Fatalf("the buffer took %d packets of %d and played %d samples", js.PacketsReceived, ticks, js.JitterBufferEmittedCount)
	}
	t.Logf("%d ticks, %d of them %v late; target %v, concealment events %d", ticks, lateTicks, late, js.TargetDelay, js.ConcealmentEvents)
}
