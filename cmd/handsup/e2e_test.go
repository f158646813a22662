package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"github.com/handsup-audio/handsup/internal/testnet"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/bench/signal"
)

// TestFFmpegEndToEnd runs the real server binary with ffmpeg as its
// clients: two speakers send their own tones over Opus/RTP from the ports
// they declared, and each speaker and a listener receive through an SDP
// file. What each received is decoded by ffmpeg and checked with Goertzel,
// 20 ms at a time. The speakers send their RTCP from the port above their
// RTP port, as the README's demo does, to the server's RTP port + 1: their
// sender reports give them a reception block and count as RTCP in the
// metrics.
func TestFFmpegEndToEnd(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ffmpeg is missing: make deps installs it")
		}
		t.Skip("ffmpeg is missing (make deps installs it); skipping the end-to-end test")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "handsup")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	srv := startBinary(t, bin)

	ports := freeUDPPorts(t, 3)
	s1Recv, s2Recv, lRecv := ports[0], ports[1], ports[2]
	s1Send, s2Send := testnet.FreeUDPPortPair(t), testnet.FreeUDPPortPair(t)
	s1RTCP, s2RTCP := s1Send+1, s2Send+1
	const f1, f2 = 440.0, 1000.0

	srv.post(t, "/v1/rooms", `{"id":"e2e"}`)
	srv.post(t, "/v1/rooms/e2e/participants", fmt.Sprintf(
		`{"id":"s1","role":"speaker","rtp":{"addr":"127.0.0.1:%d","recv_addr":"127.0.0.1:%d"}}`, s1Send, s1Recv))
	srv.post(t, "/v1/rooms/e2e/participants", fmt.Sprintf(
		`{"id":"s2","role":"speaker","rtp":{"addr":"127.0.0.1:%d","recv_addr":"127.0.0.1:%d"}}`, s2Send, s2Recv))
	srv.post(t, "/v1/rooms/e2e/participants", fmt.Sprintf(
		`{"id":"l","role":"listener","rtp":{"addr":"127.0.0.1:%d"}}`, lRecv))

	// Receivers first: the server streams to them from their first tick.
	const seconds = 5
	recv := func(name string, port int) (*exec.Cmd, string) {
		sdp := filepath.Join(dir, name+".sdp")
		raw := filepath.Join(dir, name+".raw")
		body := fmt.Sprintf("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=%s\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n", name, port)
		if err := os.WriteFile(sdp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin",
			"-protocol_whitelist", "file,udp,rtp", "-i", sdp,
			"-t", fmt.Sprint(seconds), "-ac", "1", "-ar", "48000", "-f", "s16le", "-y", raw)
		return cmd, raw
	}
	var receivers []*exec.Cmd
	var raws []string
	for _, r := range []struct {
		name string
		port int
	}{{"s1", s1Recv}, {"s2", s2Recv}, {"l", lRecv}} {
		cmd, raw := recv(r.name, r.port)
		cmd.Stderr = &prefixWriter{t: t, prefix: "ffmpeg " + r.name + " recv: "}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		receivers = append(receivers, cmd)
		raws = append(raws, raw)
	}
	send := func(name string, freq float64, port, rtcpPort int) *exec.Cmd {
		url := fmt.Sprintf("rtp://%s?localrtpport=%d&localrtcpport=%d", srv.rtp, port, rtcpPort)
		cmd := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
			"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%v:sample_rate=48000", freq),
			"-t", fmt.Sprint(seconds+2), "-ac", "1", "-c:a", "libopus", "-b:a", "48k",
			"-frame_duration", "20", "-application", "audio", "-payload_type", "111",
			"-f", "rtp", url)
		cmd.Stdout = io.Discard // the SDP it prints
		cmd.Stderr = &prefixWriter{t: t, prefix: "ffmpeg " + name + " send: "}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	senders := []*exec.Cmd{send("s1", f1, s1Send, s1RTCP), send("s2", f2, s2Send, s2RTCP)}
	for _, r := range receivers {
		waitFor(t, r, (seconds+10)*time.Second)
	}
	// ffmpeg sends its first sender report about 4 s in; the senders run
	// for 7 s, the receivers for at least 5.
	room := srv.getText(t, "/v1/rooms/e2e")
	for _, id := range []string{"s1", "s2"} {
		if !hasReception(room, id) {
			t.Errorf("speaker %s has no reception block: %s", id, room)
		}
	}
	n := metricValue(t, srv.getText(t, "/metrics"), `handsup_udp_datagrams_received_total{kind="rtcp"}`)
	t.Logf("RTCP datagrams received: %v", n)
	if n < 2 {
		t.Errorf(`handsup_udp_datagrams_received_total{kind="rtcp"} is %v, want at least one sender report from each speaker`, n)
	}
	for _, s := range senders {
		_ = s.Process.Kill()
		_ = s.Wait()
	}

	levels := func(raw string) (float64, float64) {
		pcm := readPCM(t, raw)
		if len(pcm) < 48000*3 {
			t.Fatalf("%s: only %d samples received", raw, len(pcm))
		}
		// The last two seconds, both talking, block by block: a real-time
		// path may drop or insert a frame (a late tick, ffmpeg's own
		// jitter buffer), which breaks a tone's phase, not whether it is
		// heard.
		tail := pcm[len(pcm)-48000*2:]
		return signal.ToneLevelDB(tail, f1), signal.ToneLevelDB(tail, f2)
	}
	a1, b1 := levels(raws[0])
	a2, b2 := levels(raws[1])
	al, bl := levels(raws[2])
	t.Logf("s1 hears %.0f Hz at %.1f dB and %.0f Hz at %.1f dB", f1, a1, f2, b1)
	t.Logf("s2 hears %.0f Hz at %.1f dB and %.0f Hz at %.1f dB", f1, a2, f2, b2)
	t.Logf("listener hears %.0f Hz at %.1f dB and %.0f Hz at %.1f dB", f1, al, f2, bl)
	// ffmpeg's sine is at -18 dBFS: present means above -30 dB, absent
	// below -50 dB.
	const present, absent = -30, -50
	if b1 < present || a1 > absent {
		t.Errorf("s1 should hear only s2's tone")
	}
	if a2 < present || b2 > absent {
		t.Errorf("s2 should hear only s1's tone")
	}
	if al < present || bl < present {
		t.Errorf("the listener should hear both tones")
	}

	// SIGTERM: the server exits 0 within two seconds.
	start := time.Now()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("server exit after SIGTERM: %v", err)
		}
		t.Logf("server stopped %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	case <-time.After(2 * time.Second):
		t.Error("server still running 2 s after SIGTERM")
		_ = srv.cmd.Process.Kill()
	}
}

type runningServer struct {
	cmd  *exec.Cmd
	http string
	rtp  string
}

// startBinary starts the server on kernel-chosen loopback ports and reads
// them from its JSON log.
func startBinary(t *testing.T, bin string) *runningServer {
	t.Helper()
	cmd := exec.Command(bin, "-http", "127.0.0.1:0", "-rtp", "127.0.0.1:0", "-webrtc-udp", "127.0.0.1:0", "-log-format", "json")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &prefixWriter{t: t, prefix: "handsup: "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := bufio.NewScanner(stdout)
	srv := &runningServer{cmd: cmd}
	for lines.Scan() {
		var rec struct{ Msg, HTTP, RTP string }
		if json.Unmarshal(lines.Bytes(), &rec) == nil && rec.Msg == "serving" {
			srv.http, srv.rtp = rec.HTTP, rec.RTP
			break
		}
	}
	if srv.http == "" {
		t.Fatal("the server never said it was serving")
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return srv
}

func (s *runningServer) post(t *testing.T, path, body string) {
	t.Helper()
	resp, err := http.Post("http://"+s.http+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s: %d %s", path, resp.StatusCode, msg)
	}
}

func (s *runningServer) getText(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + s.http + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return string(body)
}

// hasReception says whether the room's JSON shows a reception block for
// participant id.
func hasReception(roomJSON, id string) bool {
	var room struct {
		Members []struct {
			ID        string          `json:"id"`
			Reception json.RawMessage `json:"reception"`
		} `json:"members"`
	}
	if json.Unmarshal([]byte(roomJSON), &room) != nil {
		return false
	}
	for _, m := range room.Members {
		if m.ID == id {
			return len(m.Reception) > 0 && string(m.Reception) != "null"
		}
	}
	return false
}

// metricValue reads one series from a Prometheus text exposition; -1 when
// it is missing.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// freeUDPPorts finds n loopback UDP ports for clients to bind.
func freeUDPPorts(t *testing.T, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = testnet.FreeUDPPort(t)
	}
	return ports
}

func waitFor(t *testing.T, cmd *exec.Cmd, limit time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s: %v", cmd.Args[0], err)
		}
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		t.Errorf("%v did not finish within %v", cmd.Args, limit)
	}
}

func readPCM(t *testing.T, path string) []int16 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pcm := make([]int16, len(data)/2)
	_ = binary.Read(bytes.NewReader(data[:len(pcm)*2]), binary.LittleEndian, pcm)
	return pcm
}

// prefixWriter sends a child's stderr to the test log.
type prefixWriter struct {
	t      *testing.T
	prefix string
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			w.t.Log(w.prefix + line)
		}
	}
	return len(p), nil
}
