package server

import (
	"errors"
	"fmt"
	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/internal/testnet"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
)

// What the speaker of a DTX run says, 20 ms frame by frame: a tone, a
// silence long enough for the room's encoder to switch to DTX, then a
// short marker at another pitch (the first word) running on, phase
// continuous, into the tone again. Every start and end is faded over
// 10 ms, so the speaker's own signal has no step larger than the steady
// tone's: any larger step a decoder plays is its own.
const (
	dtxTone     = 1000.0 // Hz; its step bounds every step of the signal
	dtxMarker   = 400.0  // Hz; the first 100 ms after the silence
	dtxAmp      = 8000.0 // about -12 dBFS
	dtxTalk     = 100    // frames of tone before the silence (2 s)
	dtxSilence  = 250    // frames of digital silence, still sent (5 s)
	dtxMarkLen  = 5      // frames of marker (100 ms)
	dtxTalk2    = 100    // frames of tone after the marker (2 s)
	dtxTail     = 25     // frames of silence at the end (0.5 s)
	dtxFade     = 480    // samples (10 ms)
	dtxPresent  = -30.0  // dB: a tone at dtxAmp is at about -12
	hop         = 480    // samples: the analysis steps 10 ms at a time
	dtxMaxFrame = dtxTalk + dtxSilence + dtxMarkLen + dtxTalk2 + dtxTail
)

// dtxSpeech is the speaker's script as one phase-continuous signal.
type dtxSpeech struct {
	phase float64
	n     int // samples produced
}

// next fills one frame.
func (s *dtxSpeech) next(pcm []int16) {
	const talk1End = dtxTalk * codec.FrameSamples
	const talk2Start = (dtxTalk + dtxSilence) * codec.FrameSamples
	const markEnd = talk2Start + dtxMarkLen*codec.FrameSamples
	const talk2End = markEnd + dtxTalk2*codec.FrameSamples
	for i := range pcm {
		n := s.n + i
		freq, env := dtxTone, 0.0
		switch {
		case n < talk1End:
			env = fade(n, 0, talk1End)
		case n >= talk2Start && n < talk2End:
			env = fade(n, talk2Start, talk2End)
			if n < markEnd {
				freq = dtxMarker
			}
		default:
			s.phase = 0
		}
		pcm[i] = int16(dtxAmp * env * math.Sin(s.phase))
		if env > 0 {
			s.phase += 2 * math.Pi * freq / codec.SampleRate
		}
	}
	s.n += len(pcm)
}

// fade is a raised-cosine envelope over [start, end) with dtxFade-long
// ramps.
func fade(n, start, end int) float64 {
	d := min(n-start, end-1-n)
	if d >= dtxFade {
		return 1
	}
	return 0.5 - 0.5*math.Cos(math.Pi*float64(d)/dtxFade)
}

// pcmListener starts a real decoder listening for the room's stream on
// the loopback UDP port (and port+1 for RTCP); stop ends it gracefully
// and returns what it decoded, 48 kHz mono.
type pcmListener func(t *testing.T, port int) (stop func() []int16)

// decoder is a real listener under test.
type decoder struct {
	name   string
	listen pcmListener
	// keepsTime: it plays each DTX gap as long as the RTP timestamps say,
	// rather than the packets it got back to back.
	keepsTime bool
}

// dtxRun is what each decoder decoded in one room, and what the server
// sent there.
type dtxRun struct {
	pcm        [][]int16     // by decoder
	wall       time.Duration // from the decoders' join to their stop
	silentRate float64       // packets a second through the silence, 1 s in
}

// runDTXRooms runs the same speaker in two rooms at once, one with the
// server's default DTX and one with it off (NoDTX: 50 packets a second
// through the silence, the baseline), each heard by every decoder and by
// a Go client counting what the server sends.
func runDTXRooms(t *testing.T, decs []decoder) (dtx, full dtxRun) {
	ts := startServer(t, "")
	ts.mustCall("POST", "/v1/rooms", `{"id":"dtx"}`, 201, nil)
	ts.mustCall("POST", "/v1/rooms", `{"id":"full","no_dtx":true}`, 201, nil)
	server := net.UDPAddrFromAddrPort(ts.s.RTPAddr())

	type room struct {
		spk, count *udpClient
		stop       []func() []int16
		joined     time.Time
		speech     dtxSpeech
		run        *dtxRun
	}
	rooms := []*room{{run: &dtx}, {run: &full}}
	for i, id := range []string{"dtx", "full"} {
		r := rooms[i]
		r.spk = newUDPClient(t, server)
		ts.mustCall("POST", "/v1/rooms/"+id+"/participants",
			fmt.Sprintf(`{"id":"s","role":"speaker","rtp":{"addr":%q}}`, r.spk.addr()), 201, nil)
		r.count = newUDPClient(t, server)
		ts.mustCall("POST", "/v1/rooms/"+id+"/participants",
			fmt.Sprintf(`{"id":"count","role":"listener","rtp":{"addr":%q}}`, r.count.addr()), 201, nil)
		r.joined = time.Now()
		for j, d := range decs {
			port := testnet.FreeUDPPortPair(t)
			r.stop = append(r.stop, d.listen(t, port))
			waitBound(t, port)
			ts.mustCall("POST", "/v1/rooms/"+id+"/participants",
				fmt.Sprintf(`{"id":"decoder%d","role":"listener","rtp":{"addr":"127.0.0.1:%d"}}`, j, port), 201, nil)
		}
	}

	// Both speakers in lockstep, in real time. From 1 s into the silence
	// to its end, the packets each room sent per output stream per second
	// of its own ticks give the silent rate: the server's counts, which a
	// loaded machine (late ticks, a lagging reader) does not skew.
	var pcm [codec.FrameSamples]int16
	var pkt [1500]byte
	var marks [2]engine.Counters
	const from, to = dtxTalk + 50, dtxTalk + dtxSilence
	next := time.Now()
	for frame := range dtxMaxFrame {
		if frame == from || frame == to {
			for i, id := range []string{"dtx", "full"} {
				rm, err := ts.s.room(id)
				if err != nil {
					t.Fatal(err)
				}
				c := rm.Counters()
				if frame == from {
					marks[i] = c
					continue
				}
				ticks := float64(c.RoomTicks - marks[i].RoomTicks)
				outputs := float64(2 + len(decs)) // the speaker's mix-minus, the counter, the decoders
				if ticks > 0 {
					rooms[i].run.silentRate = float64(c.PacketsOut-marks[i].PacketsOut) / outputs / (ticks / 50)
				}
			}
		}
		for _, r := range rooms {
			r.speech.next(pcm[:])
			n, err := r.spk.enc.Encode(pcm[:], pkt[12:])
			if err != nil {
				t.Fatal(err)
			}
			r.spk.header(pkt[:12], 111)
			r.spk.send(nil, pkt[:12+n])
		}
		next = next.Add(20 * time.Millisecond)
		time.Sleep(time.Until(next))
	}
	time.Sleep(200 * time.Millisecond) // the last frames through the decoders
	for _, r := range rooms {
		r.run.wall = time.Since(r.joined)
		for _, stop := range r.stop {
			r.run.pcm = append(r.run.pcm, stop())
		}
	}
	return dtx, full
}

// waitBound waits until something (the decoder) has bound the loopback UDP
// port, so that it hears the stream from its first packet.
func waitBound(t *testing.T, port int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !testnet.UDPPortBound(port); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) { // bounds a failure only
			t.Fatalf("no decoder bound UDP port %d within 20 s", port)
		}
	}
}

// startDecoder runs name with args, which writes 48 kHz s16le mono to
// out, until the test ends; stop sends it SIGINT, waits for it and reads
// out.
func startDecoder(t *testing.T, out, name string, args ...string) func() []int16 {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Stderr = &testLogWriter{t: t, prefix: filepath.Base(name) + ": "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() []int16 {
		_ = cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var exit *exec.ExitError
			if err != nil && !errors.As(err, &exit) {
				t.Errorf("%s: %v", cmd.Path, err)
			}
		case <-time.After(20 * time.Second): // bounds a failure only
			_ = cmd.Process.Kill()
			t.Fatalf("%s did not stop within 20 s of SIGINT", cmd.Path)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		pcm := make([]int16, len(data)/2)
		for i := range pcm {
			pcm[i] = int16(uint16(data[2*i]) | uint16(data[2*i+1])<<8)
		}
		return pcm
	}
}

// testLogWriter sends a child's stderr to the test log.
type testLogWriter struct {
	t      *testing.T
	prefix string
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(w.prefix + string(p))
	return len(p), nil
}

// ffmpegListener is the README's listener: ffmpeg on an SDP file, writing
// what it decodes, through filter options if any, as raw PCM.
func ffmpegListener(ffmpeg string, filter ...string) pcmListener {
	return func(t *testing.T, port int) func() []int16 {
		dir := t.TempDir()
		sdp, out := filepath.Join(dir, "l.sdp"), filepath.Join(dir, "l.raw")
		body := fmt.Sprintf("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=handsup\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n", port)
		if err := os.WriteFile(sdp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"-hide_banner", "-loglevel", "error", "-nostdin",
			"-protocol_whitelist", "file,udp,rtp", "-i", sdp}, filter...)
		return startDecoder(t, out, ffmpeg, append(args, "-ac", "1", "-ar", "48000", "-f", "s16le", "-y", out)...)
	}
}

// dtxFigures is what a decoder played around a silence.
type dtxFigures struct {
	decoded       time.Duration // all it decoded
	gap           time.Duration // decoded silence between the tones
	before, after float64       // the tone's level before and after the silence, dB
	marker        time.Duration // the first word (marker) heard
	// Largest sample-to-sample step (|x[n]-x[n-1]|) and second difference
	// (|x[n]-2x[n-1]+x[n-2]|, a high-pass that a click stands out in)
	// in the steady tone, in the 100 ms after the tone's end, in the
	// silence, and from 100 ms before the tone's return to 50 ms into it
	// (the marker's onset).
	step, curv  [4]float64
	silencePeak int // largest |x| in the silence
}

// Regions of dtxFigures.step and curv.
const (
	regTone = iota
	regEnd
	regSilence
	regResume
)

var regionNames = [4]string{"steady tone", "tone's end", "silence", "tone's return"}

// analyse finds the two talk spurts in pcm and measures them.
func analyse(t *testing.T, name string, pcm []int16) dtxFigures {
	t.Helper()
	var f dtxFigures
	f.decoded = samplesDur(len(pcm))
	// Hop by hop (20 ms windows, 10 ms apart): is either tone present?
	hops := (len(pcm) - codec.FrameSamples) / hop
	talking := make([]bool, max(hops, 0))
	for h := range talking {
		w := pcm[h*hop : h*hop+codec.FrameSamples]
		talking[h] = signal.ToneDB(w, dtxTone) > dtxPresent || signal.ToneDB(w, dtxMarker) > dtxPresent
	}
	// The longest quiet run between the first and last talking hops is
	// the silence.
	first, last := -1, -1
	for h, on := range talking {
		if on {
			if first < 0 {
				first = h
			}
			last = h
		}
	}
	end1, start2 := -1, -1
	for h := first; first >= 0 && h <= last; {
		if talking[h] {
			h++
			continue
		}
		q := h
		for q <= last && !talking[q] {
			q++
		}
		if end1 < 0 || q-h > start2-end1 {
			end1, start2 = h, q
		}
		h = q
	}
	if end1 < 0 {
		t.Fatalf("%s: no silence between two talk spurts in %v of audio", name, f.decoded)
	}
	// Sample positions: the first talk spurt ends about where its last
	// window ends, the second starts where its first window starts.
	e, s := (end1-1)*hop+codec.FrameSamples, start2*hop
	f.gap = samplesDur(s - e)
	ms := func(d int) int { return d * codec.SampleRate / 1000 }
	if first*hop+ms(600) > e-ms(300) || s+ms(1000) > len(pcm) || s-e < ms(200) {
		t.Fatalf("%s: talk spurts %v..%v and %v..%v: too short to measure",
			name, samplesDur(first*hop), samplesDur(e), samplesDur(s), samplesDur(last*hop))
	}
	f.before = signal.ToneLevelDB(pcm[first*hop+ms(300):e-ms(300)], dtxTone)
	f.after = signal.ToneLevelDB(pcm[s+ms(200):s+ms(1000)], dtxTone)
	for h := start2; h < start2+20 && h < len(talking); h++ {
		if signal.ToneDB(pcm[h*hop:h*hop+codec.FrameSamples], dtxMarker) > dtxPresent {
			f.marker += 10 * time.Millisecond
		}
	}
	regions := [4][2]int{
		regTone:    {first*hop + ms(300), e - ms(300)},
		regEnd:     {e, e + ms(100)},
		regSilence: {e + ms(100), s - ms(100)},
		regResume:  {s - ms(100), s + ms(50)},
	}
	for i, r := range regions {
		f.step[i], f.curv[i] = roughness(pcm[max(r[0], 2):max(r[1], r[0], 2)])
	}
	for _, x := range pcm[e+ms(100) : s-ms(100)] {
		f.silencePeak = max(f.silencePeak, abs(int(x)))
	}
	return f
}

// roughness is the largest first and second difference in pcm (which
// starts at least two samples into its buffer).
func roughness(pcm []int16) (step, curv float64) {
	for i := 2; i < len(pcm); i++ {
		a, b, c := float64(pcm[i-2]), float64(pcm[i-1]), float64(pcm[i])
		step = max(step, math.Abs(c-b))
		curv = max(curv, math.Abs(c-2*b+a))
	}
	return step, curv
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func samplesDur(n int) time.Duration {
	return time.Duration(n) * time.Second / codec.SampleRate
}

// logFigures reports one run.
func logFigures(t *testing.T, name string, r dtxRun, f dtxFigures) {
	t.Helper()
	t.Logf("%s: decoded %v in %v wall; silence of %v sent, %v decoded; tone %.1f dB before, %.1f dB after; first word (marker) heard in %v of 10 ms hops; silence peak |x| %d",
		name, f.decoded.Round(time.Millisecond), r.wall.Round(time.Millisecond),
		samplesDur(dtxSilence*codec.FrameSamples-2*dtxFade), f.gap.Round(time.Millisecond),
		f.before, f.after, f.marker, f.silencePeak)
	for i, n := range regionNames {
		t.Logf("%s: %-13s largest step %5.0f (%.2f of the tone's), second difference %5.0f (%.2f of the tone's)",
			name, n, f.step[i], f.step[i]/f.step[regTone], f.curv[i], f.curv[i]/f.curv[regTone])
	}
}

// checkDTXListeners runs decoders through a silence with DTX and without
// and holds what each played with DTX to what it played without.
func checkDTXListeners(t *testing.T, decs ...decoder) {
	dtx, full := runDTXRooms(t, decs)
	// The server really sent DTX, and 50 packets a second without.
	t.Logf("through the silence the server sent %.1f packets/s with DTX, %.1f without", dtx.silentRate, full.silentRate)
	if dtx.silentRate > 5 {
		t.Errorf("with DTX the server sent %.1f packets a second through the silence, want at most 5", dtx.silentRate)
	}
	if full.silentRate < 45 {
		t.Errorf("without DTX the server sent %.1f packets a second through the silence, want 50", full.silentRate)
	}
	for j, d := range decs {
		fd, ff := analyse(t, d.name+", DTX", dtx.pcm[j]), analyse(t, d.name+", no DTX", full.pcm[j])
		logFigures(t, d.name+", DTX", dtx, fd)
		logFigures(t, d.name+", no DTX", full, ff)
		for _, c := range []struct {
			name string
			f    dtxFigures
		}{{"DTX", fd}, {"no DTX", ff}} {
			f := c.f
			// (a) The tone before and after, and the first word.
			if f.before < dtxPresent || f.after < dtxPresent {
				t.Errorf("%s, %s: tone at %.1f dB before the silence and %.1f after, want both above %v", d.name, c.name, f.before, f.after, dtxPresent)
			}
			if f.marker < 70*time.Millisecond {
				t.Errorf("%s, %s: heard %v of the first 100 ms after the silence", d.name, c.name, f.marker)
			}
			// (c) The silence decodes to silence: below -50 dBFS throughout.
			if f.silencePeak > 100 {
				t.Errorf("%s, %s: the silence peaks at |x| = %d, want at most 100 (-50 dBFS)", d.name, c.name, f.silencePeak)
			}
		}
		// (b) No clicks: after the tone's end, in the silence and at its
		// return, no step and no second difference larger, relative to
		// the steady tone's, than what the same decoder played without
		// DTX, with a margin of 25% and 0.05 of the tone's (a click of a
		// tenth of the tone's amplitude is a step of about 0.8 of a 1 kHz
		// tone's).
		for i := regEnd; i <= regResume; i++ {
			for _, m := range []struct {
				name      string
				got, base [4]float64
			}{{"step", fd.step, ff.step}, {"second difference", fd.curv, ff.curv}} {
				got, limit := m.got[i]/m.got[regTone], 1.25*m.base[i]/m.base[regTone]+0.05
				if got > limit {
					t.Errorf("%s: a click at the %s: largest %s %.2f of the steady tone's, want at most %.2f", d.name, regionNames[i], m.name, got, limit)
				}
			}
		}
		// A decoder that keeps time plays the silence as long with DTX as
		// without (the RTP timestamps run on through the gaps).
		if d.keepsTime && (fd.gap-ff.gap > 300*time.Millisecond || ff.gap-fd.gap > 300*time.Millisecond) {
			t.Errorf("%s: the silence decoded to %v with DTX and %v without", d.name, fd.gap, ff.gap)
		}
	}
}

// TestFFmpegListenerPlaysDTX: ffmpeg, listening through an SDP file as in
// the README, plays a room that falls silent (the server sends DTX) and
// speaks again without a click, hears the first word after the silence,
// and decodes the silence as silence. ffmpeg plays what it receives back
// to back: the DTX gap shrinks to the frames it got. With
// aresample=async=1 it fills the gaps from the timestamps and keeps time.
func TestFFmpegListenerPlaysDTX(t *testing.T) {
	t.Parallel() // 11 s of real time, mostly waiting
	ffmpeg := lookTool(t, "ffmpeg")
	checkDTXListeners(t,
		decoder{name: "ffmpeg", listen: ffmpegListener(ffmpeg)},
		decoder{name: "ffmpeg -af aresample=async=1", listen: ffmpegListener(ffmpeg, "-af", "aresample=async=1"), keepsTime: true})
}

// TestGStreamerListenerPlaysDTX: the same with a plain GStreamer RTP
// receiver (rtpjitterbuffer, rtpopusdepay, opusdec) writing to a file,
// which also plays the DTX gap as the frames it got; its buffers carry
// the RTP timestamps, so audiorate fills the gaps and keeps time.
func TestGStreamerListenerPlaysDTX(t *testing.T) {
	t.Parallel() // 11 s of real time, mostly waiting
	gst := lookTool(t, "gst-launch-1.0")
	checkDTXListeners(t,
		decoder{name: "GStreamer", listen: gstreamerListener(gst)},
		decoder{name: "GStreamer with audiorate", listen: gstreamerListener(gst, "audiorate"), keepsTime: true})
}

// lookTool finds a decoder's program: missing, the test is skipped, or
// fails on CI (where make deps installs it).
func lookTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing: make deps installs it", name)
		}
		t.Skipf("%s is missing (make deps installs it); skipping", name)
	}
	return path
}

// gstreamerListener is a plain GStreamer RTP receiver: udpsrc, the jitter
// buffer, the Opus depayloader and decoder, then the given elements if
// any, raw PCM to a file. -e: SIGINT ends the stream cleanly.
func gstreamerListener(gst string, elements ...string) pcmListener {
	return func(t *testing.T, port int) func() []int16 {
		out := filepath.Join(t.TempDir(), "l.raw")
		args := []string{"-q", "-e",
			"udpsrc", "address=127.0.0.1", fmt.Sprintf("port=%d", port),
			"caps=application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=111",
			"!", "rtpjitterbuffer", "!", "rtpopusdepay", "!", "opusdec",
			"!", "audioconvert", "!", "audioresample", "!", "audio/x-raw,format=S16LE,rate=48000,channels=1"}
		for _, e := range elements {
			args = append(args, "!", e)
		}
		return startDecoder(t, out, gst, append(args, "!", "filesink", "location="+out)...)
	}
}
