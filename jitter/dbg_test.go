package jitter_test

import (
	"testing"
	"time"
)

func TestDbgSlow(t *testing.T) {
	packets, err := musicPackets()
	if err != nil {
		t.Fatal(err)
	}
	s := &simStream{t: t, p: newPlayer(t), packets: packets,
		period: time.Duration(float64(tickDur) * (1 - -0.01)),
		delay:  func(int) time.Duration { return 30 * time.Millisecond }}
	last := 0
	for tick := range 30000 {
		pl := s.step()
		st := s.p.Buffer().Stats()
		if pl.Concealed > 0 {
			t.Logf("tick %d: occ %v play %v target %v conc %d exp %d acc %d (last expansion %d)", tick, st.BufferLevel, st.PlayoutLevel, st.TargetDelay, pl.Concealed, pl.Expanded, pl.Accelerated, last)
		}
		if pl.Expanded > 0 {
			last = tick
		}
	}
}
