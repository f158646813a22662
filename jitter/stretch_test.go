package jitter_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/jitter"
)

// encodeSignal encodes frames 20 ms frames of a generator's output.
func encodeSignal(t testing.TB, g signal.Generator, frames int) [][]byte {
	t.Helper()
	enc, err := codec.NewEncoder(codec.EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, frame)
	buf := make([]byte, codec.MaxPacketBytes)
	out := make([][]byte, frames)
	for i := range out {
		g.Fill(pcm)
		n, err := enc.Encode(pcm, buf)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = slices.Clone(buf[:n])
	}
	return out
}

// simStream plays packets sent every period (a sender's 20 ms on its own
// clock) through a link whose delay is delay(i) for packet i, into a
// player ticked every 20 ms, on a simulated clock: events in time order,
// a packet arriving at a tick's instant pushed before the tick.
type simStream struct {
	t       testing.TB
	p       *jitter.Player
	packets [][]byte
	period  time.Duration
	delay   func(i int) time.Duration

	pending []arrival // sent, not arrived, by arrival time
	sent    int
	tick    int
	pkt     rtp.Packet
	pcm     [frame]int16
}

type arrival struct {
	at time.Duration
	i  int
}

// step runs the simulation up to and including the next tick, and
// returns what the tick played.
func (s *simStream) step() jitter.Played {
	now := time.Duration(s.tick) * tickDur
	for ; s.sent < len(s.packets) && time.Duration(s.sent)*s.period <= now; s.sent++ {
		a := arrival{time.Duration(s.sent)*s.period + s.delay(s.sent), s.sent}
		k, _ := slices.BinarySearchFunc(s.pending, a, func(x, y arrival) int {
			if x.at != y.at {
				return int(x.at - y.at)
			}
			return x.i - y.i
		})
		s.pending = slices.Insert(s.pending, k, a)
	}
	for len(s.pending) > 0 && s.pending[0].at <= now {
		a := s.pending[0]
		s.pending = s.pending[:copy(s.pending, s.pending[1:])]
		s.pkt.SSRC, s.pkt.SequenceNumber, s.pkt.Timestamp = 9, uint16(a.i), uint32(a.i*frame)
		s.pkt.Payload = s.packets[a.i]
		s.p.Buffer().Push(&s.pkt, base.Add(a.at))
	}
	s.tick++
	return s.p.Next(base.Add(now), s.pcm[:])
}

var musicPackets = sync.OnceValues(func() ([][]byte, error) {
	enc, err := codec.NewEncoder(codec.EncoderConfig{})
	if err != nil {
		return nil, err
	}
	g := signal.NewMusic(3)
	pcm := make([]int16, frame)
	buf := make([]byte, codec.MaxPacketBytes)
	out := make([][]byte, 10*60*50*102/100)
	for i := range out {
		g.Fill(pcm)
		n, err := enc.Encode(pcm, buf)
		if err != nil {
			return nil, err
		}
		out[i] = slices.Clone(buf[:n])
	}
	return out, nil
})

// A sender whose clock runs 1% fast or slow, sending continuous music (no
// pause to hide a correction in) for 10 minutes of simulated time: the
// player keeps its playout level (Stats.PlayoutLevel, what it steers) within target ± 40 ms after every tick past the
// first second (the target falls from its 80 ms start to 20 ms at 200 ms a
// second from 3.5 s on, and the level follows by stretching), by
// stretching alone (no packet dropped, no silence inserted), with at most
// one concealment event per minute; and a tick that stretches allocates
// nothing.
func TestDriftOnMusicIsStretched(t *testing.T) {
	packets, err := musicPackets()
	if err != nil {
		t.Fatal(err)
	}
	const ticks = 10 * 60 * 50
	for _, tc := range []struct {
		name string
		skew float64 // positive: the sender's clock runs fast
	}{{"fast", 0.01}, {"slow", -0.01}} {
		t.Run(tc.name, func(t *testing.T) {
			s := &simStream{t: t, p: newPlayer(t), packets: packets,
				period: time.Duration(float64(tickDur) * (1 - tc.skew)),
				delay:  func(int) time.Duration { return 30 * time.Millisecond }}
			worst, over := time.Duration(0), 0
			var stretched, silent int
			for tick := range ticks {
				pl := s.step()
				stretched += pl.Accelerated + pl.Expanded
				if tick >= 50 {
					silent += pl.SilentSamples
					st := s.p.Buffer().Stats()
					e := st.PlayoutLevel - st.TargetDelay
					if max(e, -e) > max(worst, -worst) {
						worst = e
					}
					if max(e, -e) > 40*time.Millisecond {
						over++
					}
				}
				if tick == ticks/2 {
					if a := testing.AllocsPerRun(100, func() { stretched += s.step().Accelerated }); a != 0 {
						t.Errorf("%v allocations per tick", a)
					}
				}
			}
			st := s.p.Buffer().Stats()
			t.Logf("worst level − target %v, %d ticks beyond ±40 ms; target %v at the end; removed %d, inserted %d, dropped %d samples; %d concealment events; %d discarded",
				worst, over, st.TargetDelay, st.RemovedSamplesForAcceleration, st.InsertedSamplesForDeceleration, st.DroppedSamples, st.ConcealmentEvents, st.PacketsDiscarded)
			if over > 0 {
				t.Errorf("%d ticks with the level more than 40 ms off target (worst %v)", over, worst)
			}
			if st.ConcealmentEvents > 10 {
				t.Errorf("%d concealment events in 10 minutes, want at most 10", st.ConcealmentEvents)
			}
			if st.DroppedSamples != 0 || st.PacketsDiscarded != 0 || silent != 0 {
				t.Errorf("whole frames moved: %d samples dropped, %d packets discarded, %d samples of silence inserted", st.DroppedSamples, st.PacketsDiscarded, silent)
			}
			// 1% of ten minutes is 6 s: 288000 samples.
			net := int(st.RemovedSamplesForAcceleration) - int(st.InsertedSamplesForDeceleration)
			if want := int(tc.skew * ticks * frame); math.Abs(float64(net-want)) > 0.1*math.Abs(float64(want)) {
				t.Errorf("net samples removed %d, want about %d", net, want)
			}
		})
	}
}

// Jitter that makes the target rise (σ = 30 ms for 20 s) and fall again
// (a clean link for 20 s) on speech with pauses (a voice; its pauses hold
// the microphone's noise floor, not digital silence): the level follows
// the target by stretching both ways, and no packet is dropped or silence
// inserted to steer it: every packet that arrived in time is decoded.
func TestTargetMovesByStretching(t *testing.T) {
	const ticks = 40 * 50
	packets := encodeSignal(t, signal.NewVoice(5), ticks+10)
	rng := rand.New(rand.NewPCG(4, 4))
	s := &simStream{t: t, p: newPlayer(t), packets: packets, period: tickDur,
		delay: func(i int) time.Duration {
			if i >= ticks/2 {
				return 50 * time.Millisecond
			}
			return 50*time.Millisecond + time.Duration(math.Abs(rng.NormFloat64())*float64(30*time.Millisecond))
		}}
	var decoded, silent, accel, expand int
	var top time.Duration
	started := false
	for range ticks {
		pl := s.step()
		decoded += pl.Decoded
		accel += pl.Accelerated
		expand += pl.Expanded
		if started {
			silent += pl.SilentSamples
		}
		started = started || pl.Decoded > 0
		top = max(top, s.p.Buffer().TargetDelay())
	}
	st := s.p.Buffer().Stats()
	t.Logf("target up to %v, %v at the end; %d packets decoded, %d discarded late, %d concealed samples; stretched: %d samples removed, %d inserted (counters %d, %d); dropped %d",
		top, st.TargetDelay, decoded, st.PacketsDiscarded, st.ConcealedSamples, accel, expand,
		st.RemovedSamplesForAcceleration, st.InsertedSamplesForDeceleration, st.DroppedSamples)
	if top < 80*time.Millisecond || st.TargetDelay > 40*time.Millisecond {
		t.Fatalf("the target went to %v and ended at %v: the test's jitter did not move it", top, st.TargetDelay)
	}
	if expand == 0 || accel == 0 {
		t.Errorf("stretched %d samples out, %d in; want both", accel, expand)
	}
	if uint64(accel) != st.RemovedSamplesForAcceleration || uint64(expand) != st.InsertedSamplesForDeceleration {
		t.Errorf("the counters (%d removed, %d inserted) are not the samples stretched (%d, %d)",
			st.RemovedSamplesForAcceleration, st.InsertedSamplesForDeceleration, accel, expand)
	}
	if st.DroppedSamples != 0 || silent != 0 {
		t.Errorf("whole frames moved: %d samples dropped, %d samples of silence inserted", st.DroppedSamples, silent)
	}
	if got, want := uint64(decoded)+st.PacketsDiscarded, st.PacketsReceived-uint64(s.p.Buffer().Stats().BufferLevel/tickDur); got+1 < want {
		t.Errorf("%d decoded + %d discarded late = %d, want every packet received (%d, less the level at the end): some were skipped", decoded, st.PacketsDiscarded, got, want)
	}
}
