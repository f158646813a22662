package browsertest

import (
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/bench/impair"
	"github.com/handsup-audio/handsup/bench/signal"
)

var (
	weakFor = flag.Duration("weak-network-for", 5*time.Second,
		"how long TestBrowserWeakNetwork measures each listener (docs/weak-networks.md: 30s)")
	weakSource = flag.String("weak-network-source", "voice",
		"what TestBrowserWeakNetwork's speaker sends: voice (bench/signal's speech-like talker, with pauses) or tone (1 kHz)")
)

// weakStats is what a page's getStats() counted of its inbound audio over
// the measurement.
type weakStats struct {
	Samples, Concealed, Silent float64 // totalSamplesReceived, concealedSamples, silentConcealedSamples
	Received, Lost             float64 // packetsReceived, packetsLost
	Codec                      string
}

// ConcealedRatio is the share of played samples NetEQ concealed.
func (s weakStats) ConcealedRatio() float64 { return s.Concealed / max(s.Samples, 1) }

// LossRatio is the share of packets the listener lost, before RED.
func (s weakStats) LossRatio() float64 { return s.Lost / max(s.Received+s.Lost, 1) }

// relayed is the page script that puts a relay at relay in the path
// (the offer goes without the page's candidates, so the server learns the
// page's address only from the checks the relay forwards; the answer's
// candidates become the relay's) and, without red, leaves audio/red out
// of the offer.
func relayed(relay string, red bool) string {
	host, port, _ := strings.Cut(relay, ":")
	return fmt.Sprintf(`
		const keep = (sdp, drop) => sdp.split('\r\n').filter((l) => !drop(l)).join('\r\n');
		handsupTest.offerSDP = (sdp) => {
			sdp = keep(sdp, (l) => l.startsWith('a=candidate') || l.startsWith('a=end-of-candidates'));
			if (%t) return sdp;
			const pt = (sdp.match(/a=rtpmap:(\d+) red\/48000/) || [])[1];
			if (!pt) return sdp;
			sdp = keep(sdp, (l) => l.startsWith('a=rtpmap:' + pt + ' ') || l.startsWith('a=fmtp:' + pt + ' '));
			return sdp.replace(/^(m=audio \S+ \S+)((?: \d+)+)/m, (_, m, pts) => m + pts.split(' ').filter((p) => p !== pt).join(' '));
		};
		handsupTest.answerSDP = (sdp) => {
			let first = true;
			return sdp.split('\r\n').flatMap((l) => {
				if (!l.startsWith('a=candidate:')) return [l];
				if (!first) return [];
				first = false;
				return ['a=candidate:1 1 udp 2130706431 %s %s typ host'];
			}).join('\r\n');
		};`, red, host, port)
}

// TestBrowserWeakNetwork: two Chromium listeners hear an ffmpeg speaker's
// tone through a bench/impair relay that drops 20% of what the server
// sends them (loss-20; what they send goes through clean). The server's
// answer names only the relay's address, so the relay is their only way
// to the server. One offers RED and is answered with it (the server puts
// it on the low tier: 16 kbps, RED distance 1); the other leaves RED out
// of its offer (the mid tier: 24 kbps with in-band FEC). Over the same
// stretch of audio the test reads each one's getStats concealed-sample
// ratio: Chromium's own NetEQ, after RED and FEC did what they could.
// docs/weak-networks.md reports a 30 s run: go test -run
// TestBrowserWeakNetwork -weak-network-for 30s -v
// ./cmd/handsup/internal/browsertest/.
func TestBrowserWeakNetwork(t *testing.T) {
	e := start(t)
	loss, _ := impair.Profile("loss-20")
	loss.Seed = 20
	relay, err := impair.NewRelay(e.srv.WebRTCAddr(), impair.Config{}, loss)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = relay.Close() })
	e.api("POST", "/v1/rooms", `{"id":"r"}`, adminToken, 201)
	switch *weakSource {
	case "tone":
		e.ffmpegSpeaker("ff", ffmpegTone)
	case "voice":
		pcm := make([]int16, 20*48000)
		signal.NewVoice(1).Fill(pcm)
		wav := filepath.Join(e.dir, "voice.wav")
		writeWAV(t, wav, pcm)
		e.ffmpegSpeakerFrom("ff", "-stream_loop", "-1", "-i", wav)
	default:
		t.Fatalf("-weak-network-source %q: want voice or tone", *weakSource)
	}

	via := relay.LocalAddr().String()
	red := e.openWith("red", e.token("red", "listen"), "listener", relayed(via, true))
	plain := e.openWith("nored", e.token("nored", "listen"), "listener", relayed(via, false))
	for _, c := range []struct {
		p        *page
		red      bool
		wantTier string
	}{{red, true, "low"}, {plain, false, "mid"}} {
		var answer string
		c.p.eval(`handsupTest.S.pc.remoteDescription.sdp`, &answer)
		if got := strings.Contains(answer, "red/48000"); got != c.red {
			t.Fatalf("%s: RED in the answer: %v, want %v", c.p.name, got, c.red)
		}
		// The listener's receiver reports move it to the tier for 20% loss
		// (Chromium reports every few seconds).
		e.waitTier(c.p.name, c.wantTier)
	}

	// Both measured over the same audio, at once.
	measure := func(p *page, out *weakStats, done chan<- error) {
		done <- p.evalWithin(*weakFor+wait, fmt.Sprintf(`(async () => {
			const a = await handsupTest.inbound();
			await new Promise((r) => setTimeout(r, %d));
			const b = await handsupTest.inbound();
			return {Samples: b.samples - a.samples, Concealed: b.concealed - a.concealed, Silent: b.silent - a.silent,
				Received: b.received - a.received, Lost: b.lost - a.lost, Codec: b.codec};
		})()`, weakFor.Milliseconds()), out)
	}
	var withRED, without weakStats
	d1, d2 := make(chan error, 1), make(chan error, 1)
	go measure(red, &withRED, d1)
	go measure(plain, &without, d2)
	for _, d := range []chan error{d1, d2} {
		if err := <-d; err != nil {
			t.Fatal(err)
		}
	}
	up, down := relay.Stats()
	for _, r := range []struct {
		name string
		s    weakStats
	}{{"RED (low tier)", withRED}, {"no RED (mid tier, in-band FEC)", without}} {
		t.Logf("%s, %s over %v: %.0f packets received, %.1f%% lost; concealed %.2f%% of %.0f samples (%.2f%% in DTX silence, %.2f%% not); codec %s",
			r.name, *weakSource, *weakFor, r.s.Received, 100*r.s.LossRatio(), 100*r.s.ConcealedRatio(), r.s.Samples,
			100*r.s.Silent/max(r.s.Samples, 1), 100*(r.s.Concealed-r.s.Silent)/max(r.s.Samples, 1), r.s.Codec)
		if r.s.Samples < 0.8*48000*weakFor.Seconds() {
			t.Errorf("%s played %.0f samples in %v", r.name, r.s.Samples, *weakFor)
		}
		if l := r.s.LossRatio(); l < 0.1 || l > 0.3 {
			t.Errorf("%s lost %.1f%% of its packets, want about 20%%: is the relay in the path?", r.name, 100*l)
		}
	}
	t.Logf("relay: server→pages %d sent, %d lost (%.1f%%); pages→server %d sent, %d lost",
		down.Sent, down.Lost, 100*float64(down.Lost)/float64(max(down.Sent, 1)), up.Sent, up.Lost)
}

// waitTier waits for participant id's output tier to be tier.
func (e *env) waitTier(id, tier string) {
	e.t.Helper()
	var v struct{ Tier string }
	for deadline := time.Now().Add(wait); ; time.Sleep(100 * time.Millisecond) {
		_ = json.Unmarshal(e.api("GET", "/v1/rooms/r/participants/"+id, "", adminToken, 200), &v)
		if v.Tier == tier {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s is on tier %q after %v, want %q", id, v.Tier, wait, tier)
		}
	}
}
