package signal

import (
	"math"
	"testing"
)

// TestToneLevelDB checks the block measure reads a tone's level as ToneDB
// does on an unbroken tone, keeps reading it across phase breaks that
// cancel ToneDB, and keeps tones apart.
func TestToneLevelDB(t *testing.T) {
	pcm := make([]int16, 48000)
	for _, amp := range []float64{32767, 8000, 800} {
		Tone(pcm, 440, amp, 0)
		want := 20 * math.Log10(amp/32768)
		if got := ToneLevelDB(pcm, 440); math.Abs(got-want) > 0.1 {
			t.Errorf("amplitude %v: ToneLevelDB %.2f dB, want %.2f", amp, got, want)
		}
		if got := ToneDB(pcm, 440); math.Abs(got-want) > 0.1 {
			t.Errorf("amplitude %v: ToneDB %.2f dB, want %.2f", amp, got, want)
		}
	}

	// The second half in antiphase, as after a dropped half-period: the
	// halves cancel in ToneDB; only the block holding the break loses.
	Tone(pcm[:24000], 500, 8000, 0)
	Tone(pcm[24000:], 500, 8000, 24000+48)
	want := 20 * math.Log10(8000.0/32768)
	if got := ToneDB(pcm, 500); got > want-20 {
		t.Errorf("ToneDB across an antiphase break: %.1f dB, want the halves to cancel", got)
	}
	if got := ToneLevelDB(pcm, 500); math.Abs(got-want) > 0.5 {
		t.Errorf("ToneLevelDB across an antiphase break: %.2f dB, want %.2f", got, want)
	}

	for _, c := range []struct{ apart, below float64 }{{150, -40}, {350, -60}, {560, -60}} {
		for f := 200.0; f < 2000; f += 37 {
			Tone(pcm, f+c.apart, 32767, 0)
			if got := ToneLevelDB(pcm, f); got > c.below {
				t.Errorf("a full-scale tone at %.0f Hz reads %.1f dB at %.0f Hz, want below %v", f+c.apart, got, f, c.below)
			}
		}
	}
	if got := ToneLevelDB(pcm[:levelBlock-1], 440); got != -200 {
		t.Errorf("less than a block: %v dB, want -200", got)
	}
}
