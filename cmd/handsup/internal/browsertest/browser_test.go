package browsertest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/cmd/handsup/internal/server"
	"github.com/handsup-audio/handsup/internal/testnet"
	"github.com/handsup-audio/handsup/session/webrtc"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write docs/web-client.png from the room-flow test's moderator page")

// wait bounds every wait for the browser or the network: generous, since
// Chromium starting on a loaded two-core machine can take seconds. It
// only bounds a failure; nothing passes by waiting.
const wait = 20 * time.Second

// Tone frequencies: the ffmpeg speaker's, and the browser's fake
// microphone's.
const ffmpegTone, micTone = 1000.0, 660.0

// adminToken is the server's admin token (16 characters at least).
const adminToken = "browsertest-admin-token"

// lookPath finds a program the tests need, or skips: they fail instead
// in CI, where make deps installs it.
func lookPath(t *testing.T, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("%s is missing (make deps installs it); skipping the browser tests", names[0])
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// env is a running server and a headless Chromium whose fake microphone
// plays a micTone WAV.
type env struct {
	t       *testing.T
	ffmpeg  string
	dir     string
	srv     *server.Server
	base    string
	browser context.Context
}

// start starts them; configure, when given, changes the server's
// configuration first.
func start(t *testing.T, configure ...func(*server.Config)) *env {
	t.Helper()
	chromium := lookPath(t, "chromium", "chromium-browser", "google-chrome")
	e := &env{t: t, ffmpeg: lookPath(t, "ffmpeg"), dir: t.TempDir()}
	wav := filepath.Join(e.dir, "mic.wav")
	writeToneWAV(t, wav, micTone)

	cfg := server.Config{
		HTTPAddr: "127.0.0.1:0", RTPAddr: "127.0.0.1:0", AdminToken: adminToken,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		WebRTC: webrtc.Config{UDPAddr: "127.0.0.1:0"},
	}
	for _, c := range configure {
		c(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("server did not stop within 5 s")
		}
	})
	e.srv, e.base = srv, "http://"+srv.HTTPAddr().String()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", "new"),
		chromedp.Flag("mute-audio", false),
		chromedp.Flag("no-sandbox", true), // as root in a container
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-audio-capture", wav),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("allow-loopback-in-peer-connection", true), // the server's ICE is on 127.0.0.1
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	browser, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// The first action starts the browser on the context it is given,
	// and stops it when that context ends: not a bounded one.
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	e.browser = browser
	return e
}

// writeToneWAV writes two seconds of freq Hz at a quarter of full scale,
// 48 kHz mono: a whole number of periods, so Chromium's loop of it is
// seamless.
func writeToneWAV(t *testing.T, path string, freq float64) {
	pcm := make([]int16, 2*48000)
	signal.Tone(pcm, freq, 8192, 0)
	writeWAV(t, path, pcm)
}

// writeWAV writes pcm as a 48 kHz mono WAV file.
func writeWAV(t *testing.T, path string, pcm []int16) {
	t.Helper()
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF")
	_ = binary.Write(&b, le, uint32(36+2*len(pcm)))
	b.WriteString("WAVEfmt ")
	for _, v := range []any{uint32(16), uint16(1), uint16(1), uint32(48000), uint32(96000), uint16(2), uint16(16)} {
		_ = binary.Write(&b, le, v) // PCM, mono, 48 kHz, 2 bytes a frame, 16 bits
	}
	b.WriteString("data")
	_ = binary.Write(&b, le, uint32(2*len(pcm)))
	_ = binary.Write(&b, le, pcm)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// api calls the server with a bearer token and checks the status.
func (e *env) api(method, path, body, token string, want int) []byte {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, data, want)
	}
	return data
}

// token mints a participant token for identity in room r with grants:
// the token the page takes.
func (e *env) token(identity string, grants ...string) string {
	e.t.Helper()
	g, _ := json.Marshal(grants)
	var v struct{ Token string }
	_ = json.Unmarshal(e.api("POST", "/v1/rooms/r/tokens", fmt.Sprintf(`{"identity":%q,"grants":%s}`, identity, g), adminToken, 201), &v)
	return v.Token
}

// uplinkPackets is how many packets the server has received from id.
func (e *env) uplinkPackets(id string) uint64 {
	var v struct {
		Uplink *struct {
			PacketsReceived uint64 `json:"packets_received"`
		}
	}
	_ = json.Unmarshal(e.api("GET", "/v1/rooms/r/participants/"+id, "", adminToken, 200), &v)
	if v.Uplink == nil {
		return 0
	}
	return v.Uplink.PacketsReceived
}

// waitUplink waits for the server to receive a second of id's audio.
func (e *env) waitUplink(id string) {
	e.t.Helper()
	deadline := time.Now().Add(wait)
	for e.uplinkPackets(id) < 50 {
		if time.Now().After(deadline) {
			e.t.Fatalf("the server received %d packets from %s in %v", e.uplinkPackets(id), id, wait)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ffmpegSpeaker joins id as a plain-RTP speaker and has ffmpeg send freq
// Hz to the server until the test ends.
func (e *env) ffmpegSpeaker(id string, freq float64) {
	e.t.Helper()
	e.ffmpegSpeakerFrom(id, "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%v:sample_rate=48000", freq))
}

// ffmpegSpeakerFrom is ffmpegSpeaker sending what ffmpeg's input options
// give, in real time.
func (e *env) ffmpegSpeakerFrom(id string, input ...string) {
	e.t.Helper()
	send := testnet.FreeUDPPort(e.t)
	sink, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}) // its mix-minus, unread
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { sink.Close() })
	e.api("POST", "/v1/rooms/r/participants", fmt.Sprintf(`{"id":%q,"role":"speaker","rtp":{"addr":"127.0.0.1:%d","recv_addr":%q}}`,
		id, send, sink.LocalAddr().String()), adminToken, 201)
	url := fmt.Sprintf("rtp://%s?localrtpport=%d", e.srv.RTPAddr(), send)
	args := append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re"}, input...)
	cmd := exec.Command(e.ffmpeg, append(args, "-t", "90", "-ac", "1", "-c:a", "libopus", "-b:a", "48k", "-frame_duration", "20",
		"-application", "audio", "-payload_type", "111", "-f", "rtp", url)...)
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

// ffmpegListener joins id as a plain-RTP listener; record then decodes
// what it hears.
type ffmpegListener struct {
	e    *env
	id   string
	port int
	n    int
}

func (e *env) ffmpegListener(id string) *ffmpegListener {
	l := &ffmpegListener{e: e, id: id, port: testnet.FreeUDPPort(e.t)}
	e.api("POST", "/v1/rooms/r/participants", fmt.Sprintf(`{"id":%q,"role":"listener","rtp":{"addr":"127.0.0.1:%d"}}`, id, l.port), adminToken, 201)
	return l
}

// record has ffmpeg receive d of the listener's stream and returns it
// decoded, 48 kHz mono. It runs while during runs.
func (l *ffmpegListener) record(d time.Duration, during func()) []int16 {
	e := l.e
	e.t.Helper()
	l.n++
	sdp := filepath.Join(e.dir, fmt.Sprintf("%s-%d.sdp", l.id, l.n))
	raw := strings.TrimSuffix(sdp, ".sdp") + ".raw"
	body := fmt.Sprintf("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=%s\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n", l.id, l.port)
	if err := os.WriteFile(sdp, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(e.ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
		"-protocol_whitelist", "file,udp,rtp", "-i", sdp,
		"-t", fmt.Sprint(d.Seconds()), "-ac", "1", "-ar", "48000", "-f", "s16le", "-y", raw)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	if during != nil {
		during()
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			e.t.Fatalf("ffmpeg listener: %v %s", err, stderr.Bytes())
		}
	case <-time.After(d + wait):
		_ = cmd.Process.Kill()
		e.t.Fatalf("the ffmpeg listener did not finish within %v", d+wait)
	}
	data, err := os.ReadFile(raw)
	if err != nil {
		e.t.Fatal(err)
	}
	pcm := make([]int16, len(data)/2)
	_ = binary.Read(bytes.NewReader(data[:2*len(pcm)]), binary.LittleEndian, pcm)
	return pcm
}

// page is one tab of the browser with the web client in a room.
type page struct {
	e    *env
	name string
	ctx  context.Context

	mu      sync.Mutex
	console []string
}

// open loads the page of room r in a new tab and joins with token in
// role; the page listens at once (and publishes its microphone when
// role is on stage). The microphone's processing is off: noise
// suppression would take a steady tone for noise.
func (e *env) open(name, token, role string) *page {
	e.t.Helper()
	return e.openWith(name, token, role, "")
}

// openWith is open with script run on the page before it joins (to set
// the page's test hooks).
func (e *env) openWith(name, token, role, script string) *page {
	e.t.Helper()
	ctx, cancel := chromedp.NewContext(e.browser)
	e.t.Cleanup(cancel)
	p := &page{e: e, name: name, ctx: ctx}
	if err := chromedp.Do(ctx); err != nil { // opens the tab, which lives as long as ctx
		e.t.Fatal(err)
	}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.console = append(p.console, m.String())
			p.mu.Unlock()
		}
	}()
	e.t.Cleanup(func() {
		if e.t.Failed() {
			p.mu.Lock()
			defer p.mu.Unlock()
			for _, line := range p.console {
				e.t.Logf("%s console: %s", name, line)
			}
		}
	})
	p.do(chromedp.Navigate(e.base + "/rooms/r"))
	tok, _ := json.Marshal(token)
	p.eval(fmt.Sprintf(`(() => {
		handsupTest.micConstraints = {echoCancellation: false, noiseSuppression: false, autoGainControl: false};
		%s
		document.getElementById('token').value = %s;
		document.getElementById('role').value = %q;
		document.querySelector('#enter button[type=submit]').click();
		return true;
	})()`, script, tok, role), nil)
	p.poll(`handsupTest.S.location !== '' && handsupTest.S.pc.connectionState === 'connected'`)
	return p
}

func (p *page) bounded() context.Context { return p.within(wait) }

// within is the page's context, ending after d.
func (p *page) within(d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(p.ctx, d)
	time.AfterFunc(d, cancel)
	return ctx
}

func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.e.t.Helper()
	if err := chromedp.Do(p.bounded(), steps...); err != nil {
		p.e.t.Fatalf("%s: %v", p.name, err)
	}
}

// eval evaluates expr (awaiting a promise) into out (nil: ignored).
func (p *page) eval(expr string, out any) {
	p.e.t.Helper()
	if err := p.evalWithin(wait, expr, out); err != nil {
		p.e.t.Fatal(err)
	}
}

// evalWithin is eval bounded by d, returning its error: for a long
// evaluation, or one on another goroutine than the test's.
func (p *page) evalWithin(d time.Duration, expr string, out any) error {
	raw, err := chromedp.Run(p.within(d), chromedp.Evaluate[[]byte](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return fmt.Errorf("%s: %s: %w", p.name, expr, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s: %s: %w (%s)", p.name, expr, err, raw)
		}
	}
	return nil
}

// poll waits for expr to be true on the page.
func (p *page) poll(expr string) {
	p.e.t.Helper()
	if _, err := chromedp.Run(p.bounded(), chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(wait))); err != nil {
		p.e.t.Fatalf("%s: waiting for %s: %v", p.name, expr, err)
	}
}

// click clicks the first element selector matches, in one step of the
// page's own (the page redraws its lists on every event).
func (p *page) click(selector string) {
	p.e.t.Helper()
	sel, _ := json.Marshal(selector)
	p.poll(fmt.Sprintf(`document.querySelector(%s) !== null`, sel))
	p.eval(fmt.Sprintf(`(document.querySelector(%s).click(), true)`, sel), nil)
}

// inbound is what the page's getStats() counted of the audio it received
// over a while.
type inbound struct {
	Energy, Duration, Samples, Concealed float64
	Codec                                string
}

// EnergyRate is the received audio's mean energy per second
// (totalAudioEnergy over totalSamplesDuration).
func (in inbound) EnergyRate() float64 {
	if in.Duration <= 0 {
		return 0
	}
	return in.Energy / in.Duration
}

// measure reads the page's inbound counters over ms milliseconds.
func (p *page) measure(ms int) inbound {
	p.e.t.Helper()
	var in inbound
	p.eval(fmt.Sprintf(`(async () => {
		const a = await handsupTest.inbound();
		await new Promise((r) => setTimeout(r, %d));
		const b = await handsupTest.inbound();
		return {Energy: b.energy - a.energy, Duration: b.duration - a.duration,
			Samples: b.samples - a.samples, Concealed: b.concealed - a.concealed, Codec: b.codec};
	})()`, ms), &in)
	return in
}

// tone is the page's analyser reading of a frequency: its level and the
// median level of all frequencies, dB.
type tone struct{ Tone, Floor float64 }

func (t tone) Above() float64 { return t.Tone - t.Floor }

func (p *page) tone(freq float64, ms int) tone {
	p.e.t.Helper()
	var v tone
	p.eval(fmt.Sprintf(`handsupTest.toneDB(%v, %d).then((r) => ({Tone: r.tone, Floor: r.floor}))`, freq, ms), &v)
	return v
}

// hears waits until the page hears freq Hz at least 20 dB over the rest
// of the spectrum.
func (p *page) hears(freq float64) {
	p.e.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		v := p.tone(freq, 300)
		if v.Above() > 20 {
			return
		}
		if time.Now().After(deadline) {
			p.e.t.Fatalf("%s never heard %v Hz within %v (last: %+v)", p.name, freq, wait, v)
		}
	}
}

// TestBrowserListenerHearsFFmpegSpeaker: a Chromium listener opens the
// page with a listener's token; it hears nothing but comfort noise in
// an empty room, then an ffmpeg speaker's 1 kHz tone, dominant in its
// analyser and in getStats' audio energy. Its offer puts RED first, and
// the server answers with RED.
func TestBrowserListenerHearsFFmpegSpeaker(t *testing.T) {
	e := start(t)
	e.api("POST", "/v1/rooms", `{"id":"r"}`, adminToken, 201)
	p := e.open("listener", e.token("web", "listen"), "listener")
	var sdp string
	p.eval(`handsupTest.S.pc.remoteDescription.sdp`, &sdp)
	if !strings.Contains(sdp, "red/48000") {
		t.Errorf("the answer to Chromium's offer has no RED:\n%s", sdp)
	}

	silent := p.measure(1500)
	e.ffmpegSpeaker("ff", ffmpegTone)
	p.hears(ffmpegTone)
	heard := p.measure(2000)
	v := p.tone(ffmpegTone, 2000)
	t.Logf("silent room: energy %.2g/s over %.2f s; with the tone: energy %.2g/s over %.2f s (%s, %.1f%% concealed); analyser: %.0f Hz at %.1f dB, median %.1f dB",
		silent.EnergyRate(), silent.Duration, heard.EnergyRate(), heard.Duration, heard.Codec,
		100*heard.Concealed/max(heard.Samples, 1), ffmpegTone, v.Tone, v.Floor)
	if v.Above() < 30 {
		t.Errorf("the %v Hz tone is %.1f dB above the median of the spectrum, want 30", ffmpegTone, v.Above())
	}
	if heard.Duration < 1 || heard.EnergyRate() < 100*max(silent.EnergyRate(), 1e-6) {
		t.Errorf("received audio energy %.2g/s with the tone, %.2g/s in silence", heard.EnergyRate(), silent.EnergyRate())
	}
}

// TestBrowserSpeakerHeardByFFmpeg: a Chromium speaker publishes its fake
// microphone's 660 Hz tone on its WHEP connection (a sendrecv offer
// PATCHed to its Location); an ffmpeg listener and a Chromium listener
// hear it, and the speaker does not hear itself (mix-minus): its own
// inbound energy is a hundredth of the listener's at most.
func TestBrowserSpeakerHeardByFFmpeg(t *testing.T) {
	e := start(t)
	e.api("POST", "/v1/rooms", `{"id":"r"}`, adminToken, 201)
	ffl := e.ffmpegListener("ffl")
	spk := e.open("speaker", e.token("web", "listen", "speak"), "speaker")
	lis := e.open("listener", e.token("web2", "listen"), "listener")
	spk.poll(`handsupTest.S.publishing && handsupTest.S.pc.currentRemoteDescription.sdp.includes('a=sendrecv')`)
	e.waitUplink("web")
	lis.hears(micTone)

	var own, other inbound
	var ownTone tone
	pcm := ffl.record(4*time.Second, func() {
		own = spk.measure(2000)
		ownTone = spk.tone(micTone, 1000)
		other = lis.measure(1000)
	})
	if len(pcm) < 3*48000 {
		t.Fatalf("the ffmpeg listener decoded %d samples", len(pcm))
	}
	db := signal.ToneLevelDB(pcm[len(pcm)-3*48000:], micTone)
	t.Logf("ffmpeg listener hears %v Hz at %.1f dB; Chromium listener energy %.2g/s; the speaker's own inbound energy %.2g/s, its analyser's %v Hz at %.1f dB",
		micTone, db, other.EnergyRate(), own.EnergyRate(), micTone, ownTone.Tone)
	if db < -30 {
		t.Errorf("the ffmpeg listener hears the browser's %v Hz at %.1f dB, want above -30", micTone, db)
	}
	if own.Duration < 1 || own.EnergyRate() > other.EnergyRate()/100 {
		t.Errorf("the speaker hears itself: inbound energy %.2g/s, the listener's %.2g/s", own.EnergyRate(), other.EnergyRate())
	}
	// Heard, a tone reads about -30 dB in the analyser; in the silence of
	// a mix-minus, below -150 dB.
	if ownTone.Tone > -90 {
		t.Errorf("the speaker's analyser shows its own tone at %.1f dB", ownTone.Tone)
	}
}

// TestBrowserICEServersFromLink: a server configured with a STUN and a
// TURN server (-stun, -turn) names them in the WHEP answer's Link
// headers; the page hands them to its RTCPeerConnection
// (setConfiguration after the answer, for its next ICE restart), TURN
// with the credentials made for this participant.
func TestBrowserICEServersFromLink(t *testing.T) {
	e := start(t, func(c *server.Config) {
		c.ICEServers = webrtc.ICEServers{
			URLs:       []string{"stun:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=udp"},
			TURNSecret: []byte("browsertest-turn-secret"),
		}
	})
	e.api("POST", "/v1/rooms", `{"id":"r"}`, adminToken, 201)
	p := e.open("listener", e.token("web", "listen"), "listener")
	var got []struct {
		URLs       any    `json:"urls"`
		Username   string `json:"username"`
		Credential string `json:"credential"`
	}
	p.eval(`handsupTest.S.pc.getConfiguration().iceServers`, &got)
	t.Logf("the page's iceServers: %+v", got)
	if len(got) != 2 {
		t.Fatalf("the page's RTCPeerConnection has %d ICE servers, want 2: %+v", len(got), got)
	}
	if fmt.Sprint(got[0].URLs) != "stun:127.0.0.1:3478" && fmt.Sprint(got[0].URLs) != "[stun:127.0.0.1:3478]" {
		t.Errorf("first ICE server %v, want stun:127.0.0.1:3478", got[0].URLs)
	}
	if !strings.Contains(fmt.Sprint(got[1].URLs), "turn:127.0.0.1:3478?transport=udp") ||
		!strings.HasSuffix(got[1].Username, ":web") || got[1].Credential == "" {
		t.Errorf("second ICE server %+v, want the TURN server with web's credentials", got[1])
	}
}
