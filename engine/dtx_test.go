package engine_test

import (
	"testing"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/engine"
)

// dtxRun is one room's silence and resumption, as a listener receives it.
type dtxRun struct {
	silentRate float64 // packets a second to the listener through 3 s of silence
	onset      int     // ticks after the speaker resumes until the listener hears it
	listener   *client
}

// runSilenceThenSpeech: a speaker talks, falls silent for 4 s, then talks
// again.
func runSilenceThenSpeech(t *testing.T, cfg engine.RoomConfig) dtxRun {
	r := newTestRoom(t, cfg)
	a := r.join("a", engine.Speaker, fA, 0.25)
	l := r.join("l", engine.Listener, 0, 0)
	r.run(warmUp)
	a.silence = true
	r.run(50) // DTX sets in about 200 ms into a silence
	l.mu.Lock()
	before := len(l.headers)
	l.mu.Unlock()
	r.run(150)
	l.mu.Lock()
	run := dtxRun{silentRate: float64(len(l.headers)-before) / 3, listener: l}
	l.mu.Unlock()

	a.silence = false
	for tick := 1; tick <= 50; tick++ {
		mark := l.mark()
		r.run(1)
		if got := l.since(mark); len(got) > 0 && signal.ToneDB(got, fA) > presentDB {
			run.onset = tick
			break
		}
	}
	return run
}

// TestDTXInSilence: a silent room costs a listener at most 5 packets a
// second (DTX: a comfort-noise frame every 400 ms), its stream stays
// continuous (timestamps run on across the gaps, the marker flags each),
// and when the speaker resumes the listener hears it as soon as in a room
// without DTX.
func TestDTXInSilence(t *testing.T) {
	dtx := runSilenceThenSpeech(t, engine.RoomConfig{})
	full := runSilenceThenSpeech(t, engine.RoomConfig{NoDTX: true})
	t.Logf("silent room: %.1f packets/s with DTX, %.1f without; speech heard %d and %d ticks after it resumed",
		dtx.silentRate, full.silentRate, dtx.onset, full.onset)
	if dtx.silentRate > 5 {
		t.Errorf("a silent room sends a listener %.1f packets a second, want at most 5", dtx.silentRate)
	}
	if full.silentRate < 49 {
		t.Errorf("without DTX, %.1f packets a second, want 50", full.silentRate)
	}
	if dtx.onset == 0 || full.onset == 0 || dtx.onset > full.onset {
		t.Errorf("speech heard %d ticks after it resumed with DTX, %d without (0: never)", dtx.onset, full.onset)
	}
	dtx.listener.expectContinuous()
	dtx.listener.mu.Lock()
	defer dtx.listener.mu.Unlock()
	gaps := 0
	for i := 1; i < len(dtx.listener.headers); i++ {
		if dtx.listener.headers[i].Timestamp-dtx.listener.headers[i-1].Timestamp > codec.FrameSamples {
			gaps++
		}
	}
	if gaps == 0 {
		t.Error("no DTX gap in the listener's stream")
	}
}

// A talker alone in the room hears silence: once its private encoder is
// in DTX, the tick skips most of its encodes (a comfort-noise encode every
// 20 ticks), its stream stays continuous, and it hears the next voice as
// soon as it comes.
func TestSoloTalkerSkipsSilentEncodes(t *testing.T) {
	r := newTestRoom(t, engine.RoomConfig{})
	a := r.join("a", engine.Speaker, fA, 0.25)
	b := r.join("b", engine.Speaker, fB, 0.25)
	b.silence = true
	r.join("l", engine.Listener, 0, 0)
	r.run(warmUp + 50) // a's private encoder reaches DTX about 200 ms in
	before := r.room.Counters().Encodes
	r.run(200)
	perTick := float64(r.room.Counters().Encodes-before) / 200
	// The room's shared encoder every tick, a's private one 1 tick in 20.
	if perTick > 1.1 {
		t.Errorf("%.2f encodes a tick while a talks alone, want the shared one and about 0.05", perTick)
	}
	b.silence = false
	mark := a.mark()
	r.run(25)
	r.expectHears(a, mark, fB)
	r.expectNotHears(a, mark, fA)
	a.expectContinuous()
}
