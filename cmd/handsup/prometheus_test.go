package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/deploy/dashboard"
)

// promResult is the data of a Prometheus instant query.
type promResult struct {
	Status    string
	ErrorType string
	Error     string
	Data      struct {
		Result []struct {
			Metric map[string]string
			Value  [2]any
		}
	}
}

// TestPrometheusScrapesTheServer runs a real Prometheus, with handsup's
// recording and alert rules, against the real server binary carrying a
// room with a talking speaker and listeners (one of which sends receiver
// reports), and asks it, through its query API, what an operator would:
// is the target up, how many rooms and participants, how many packets
// were dropped and why, is the clock keeping 50 ticks a second; then it
// evaluates every query of every panel of the shipped dashboard
// (deploy/grafana/handsup.json): each must parse and return at least one
// series, so renaming a metric a panel uses fails here.
func TestPrometheusScrapesTheServer(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prometheus is missing: make deps installs it")
		}
		t.Skip("prometheus is missing (make deps installs it); skipping")
	}
	board, err := os.ReadFile("../../deploy/grafana/handsup.json")
	if err != nil {
		t.Fatal(err)
	}
	panels, err := dashboard.Queries(board)
	if err != nil {
		t.Fatal(err)
	}
	rulesDir, err := filepath.Abs("../../deploy/prometheus")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "handsup")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	srv := startBinary(t, bin)
	srv.post(t, "/v1/rooms", `{"id":"watched"}`)
	speaker, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer speaker.Close()
	listener, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close()
	srv.post(t, "/v1/rooms/watched/participants", fmt.Sprintf(
		`{"id":"s","role":"speaker","rtp":{"addr":%q}}`, speaker.LocalAddr()))
	for i := range 3 {
		srv.post(t, "/v1/rooms/watched/participants", fmt.Sprintf(
			`{"id":"l%d","role":"listener","rtp":{"addr":"127.0.0.1:%d"}}`, i, 40000+i))
	}
	srv.post(t, "/v1/rooms/watched/participants", fmt.Sprintf(
		`{"id":"reporter","role":"listener","rtp":{"addr":%q}}`, listener.LocalAddr()))
	var joined struct{ SSRC uint32 }
	if err := json.Unmarshal([]byte(srv.getText(t, "/v1/rooms/watched/participants/reporter")), &joined); err != nil || joined.SSRC == 0 {
		t.Fatalf("the reporter's SSRC: %v", err)
	}
	rtpAddr, err := net.ResolveUDPAddr("udp", srv.rtp)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 { // not RTP at all: dropped as malformed
		if _, err := speaker.WriteToUDP([]byte("hello"), rtpAddr); err != nil {
			t.Fatal(err)
		}
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go talk(ctx, speaker, rtpAddr)
	rep := &reporter{conn: listener, to: rtpAddr, ssrc: joined.SSRC}
	go rep.readSRs()
	go rep.report(ctx)

	web := freeTCPAddr(t)
	config := filepath.Join(dir, "prometheus.yml")
	body := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"+
		"rule_files:\n  - %q\n  - %q\n"+
		"scrape_configs:\n  - job_name: handsup\n    static_configs:\n      - targets: [%q]\n",
		filepath.Join(rulesDir, "recording.yml"), filepath.Join(rulesDir, "alerts.yml"), srv.http)
	if err := os.WriteFile(config, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(prom, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+web, "--log.level=warn")
	cmd.Stderr = &prefixWriter{t: t, prefix: "prometheus: "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()

	query := func(q string) (promResult, error) {
		var r promResult
		resp, err := http.Get("http://" + web + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return r, err
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(data, &r); err != nil {
			return r, fmt.Errorf("%s: %q", err, data)
		}
		if r.Status != "success" {
			return r, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
		}
		return r, nil
	}
	value := func(q string) (float64, bool) {
		r, err := query(q)
		if err != nil || len(r.Data.Result) == 0 {
			return 0, false
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	checks := []struct {
		query string
		ok    func(float64) bool
		want  string
	}{
		{`up{job="handsup"}`, func(v float64) bool { return v == 1 }, "1"},
		{`handsup_ready`, func(v float64) bool { return v == 1 }, "1"},
		{`handsup_rooms`, func(v float64) bool { return v == 1 }, "1"},
		{`handsup_participants{role="listener"}`, func(v float64) bool { return v == 4 }, "4"},
		{`handsup_participants{role="speaker"}`, func(v float64) bool { return v == 1 }, "1"},
		{`count(count by (room) ({__name__=~"handsup_.+", room!=""}))`, nil, "no series (no room label by default)"},
		{`handsup_rtp_packets_dropped_total{reason="malformed"}`, func(v float64) bool { return v == 5 }, "5"},
		{`handsup_udp_declared_peers`, func(v float64) bool { return v == 5 }, "5"},
		{`rate(handsup_ticks_total[5s])`, func(v float64) bool { return v > 40 && v < 60 }, "about 50"},
		{`handsup_tick_duration_seconds_count > 0`, func(v float64) bool { return v > 0 }, "> 0"},
		{`handsup_receiver_report_loss_ratio_count > 0`, func(v float64) bool { return v > 0 }, "> 0"},
		{`handsup_receiver_report_rtt_seconds_count > 0`, func(v float64) bool { return v > 0 }, "> 0 (the reporter echoes sender reports)"},
		{`handsup_speaker_buffer_delay_seconds_count > 0`, func(v float64) bool { return v > 0 }, "> 0"},
	}
	deadline := time.Now().Add(60 * time.Second) // bounds a failure only
	for _, c := range checks {
		var v float64
		var ok bool
		for time.Now().Before(deadline) {
			v, ok = value(c.query)
			if c.ok == nil && !ok || c.ok != nil && ok && c.ok(v) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if c.ok == nil && ok || c.ok != nil && (!ok || !c.ok(v)) {
			t.Errorf("Prometheus says %s = %v (answered: %v), want %s", c.query, v, ok, c.want)
		} else {
			t.Logf("%s = %v", c.query, v)
		}
	}

	// The rules loaded and evaluate without error.
	var rules struct {
		Data struct {
			Groups []struct {
				Name  string
				Rules []struct{ Name, Health, LastError string }
			}
		}
	}
	resp, err := http.Get("http://" + web + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&rules)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	groups := map[string]int{}
	for _, g := range rules.Data.Groups {
		groups[g.Name] = len(g.Rules)
		for _, r := range g.Rules {
			if r.Health == "err" {
				t.Errorf("rule %s: %s", r.Name, r.LastError)
			}
		}
	}
	if groups["handsup.recording"] == 0 || groups["handsup.alerts"] == 0 {
		t.Errorf("rule groups loaded: %v", groups)
	}

	// Every dashboard panel's query, as Grafana would send it.
	grafana := strings.NewReplacer(`$job`, "handsup", `$__rate_interval`, "10s")
	for _, p := range panels {
		q := grafana.Replace(p.Expr)
		var r promResult
		var err error
		for time.Now().Before(deadline) {
			if r, err = query(q); err == nil && len(r.Data.Result) > 0 {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		switch {
		case err != nil:
			t.Errorf("panel %q: %s: %v", p.Panel, q, err)
		case len(r.Data.Result) == 0:
			t.Errorf("panel %q: %s: no series", p.Panel, q)
		default:
			t.Logf("panel %q: %d series, first %v", p.Panel, len(r.Data.Result), r.Data.Result[0].Value[1])
		}
	}
}

// talk sends a tone as Opus/RTP, a packet every 20 ms, until ctx ends.
func talk(ctx context.Context, conn *net.UDPConn, to *net.UDPAddr) {
	enc, err := codec.NewEncoder(codec.EncoderConfig{})
	if err != nil {
		return
	}
	pcm := make([]int16, codec.FrameSamples)
	buf := make([]byte, codec.MaxPacketBytes)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		signal.Tone(pcm, 440, 8000, i*codec.FrameSamples)
		n, err := enc.Encode(pcm, buf)
		if err != nil {
			return
		}
		pkt, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(i),
			Timestamp: uint32(i * codec.FrameSamples), SSRC: 0x5EED}, Payload: buf[:n]}).Marshal()
		_, _ = conn.WriteToUDP(pkt, to)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// reporter is a listening client that sends receiver reports about the
// stream sent to it: 2% lost, some jitter, and the last sender report it
// got (LSR and DLSR, RFC 3550 §6.4.1), so that the server measures the
// round trip.
type reporter struct {
	conn *net.UDPConn
	to   *net.UDPAddr
	ssrc uint32

	mu     sync.Mutex
	lsr    uint32    // middle 32 bits of the last SR's NTP time
	lsrAt  time.Time // when it came
	hasLSR bool
}

// readSRs reads what the server sends until the socket closes, keeping
// the last sender report.
func (r *reporter) readSRs() {
	buf := make([]byte, 1500)
	for {
		n, err := r.conn.Read(buf)
		if err != nil {
			return
		}
		if n < 2 || buf[1] < 192 || buf[1] > 223 {
			continue // RTP
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				r.mu.Lock()
				r.lsr, r.lsrAt, r.hasLSR = uint32(sr.NTPTime>>16), time.Now(), true
				r.mu.Unlock()
			}
		}
	}
}

// report sends a receiver report every 500 ms until ctx ends.
func (r *reporter) report(ctx context.Context) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		block := rtcp.ReceptionReport{SSRC: r.ssrc, FractionLost: 5, Jitter: 480}
		r.mu.Lock()
		if r.hasLSR {
			block.LastSenderReport = r.lsr
			block.Delay = uint32(time.Since(r.lsrAt).Seconds() * 65536)
		}
		r.mu.Unlock()
		rr, _ := (&rtcp.ReceiverReport{SSRC: 0xFEED, Reports: []rtcp.ReceptionReport{block}}).Marshal()
		_, _ = r.conn.WriteToUDP(rr, r.to)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func freeTCPAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
