package main

import (
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
	"testing"
	"time"
)

// TestPrometheusScrapesTheServer runs a real Prometheus against the real
// server binary and asks it, through its query API, what an operator's
// dashboard would: is the target up, how many rooms and participants, how
// many packets were dropped and why, is the clock keeping 50 ticks a second.
func TestPrometheusScrapesTheServer(t *testing.T) {
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prometheus is missing: make deps installs it")
		}
		t.Skip("prometheus is missing (make deps installs it); skipping")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "handsup")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	srv := startBinary(t, bin)
	srv.post(t, "/v1/rooms", `{"id":"watched"}`)
	client, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	srv.post(t, "/v1/rooms/watched/participants", fmt.Sprintf(
		`{"id":"s","role":"speaker","rtp":{"addr":%q}}`, client.LocalAddr()))
	for i := range 3 {
		srv.post(t, "/v1/rooms/watched/participants", fmt.Sprintf(
			`{"id":"l%d","role":"listener","rtp":{"addr":"127.0.0.1:%d"}}`, i, 40000+i))
	}
	rtpAddr, err := net.ResolveUDPAddr("udp", srv.rtp)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 { // not RTP at all: dropped as malformed
		if _, err := client.WriteToUDP([]byte("hello"), rtpAddr); err != nil {
			t.Fatal(err)
		}
	}

	web := freeTCPAddr(t)
	config := filepath.Join(dir, "prometheus.yml")
	body := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: handsup\n    static_configs:\n      - targets: [%q]\n", srv.http)
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

	query := func(q string) (float64, bool) {
		resp, err := http.Get("http://" + web + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return 0, false
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var r struct {
			Status string
			Data   struct {
				Result []struct {
					Value [2]any
				}
			}
		}
		if json.Unmarshal(data, &r) != nil || r.Status != "success" || len(r.Data.Result) == 0 {
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
		{`handsup_rooms`, func(v float64) bool { return v == 1 }, "1"},
		{`handsup_participants{role="listener"}`, func(v float64) bool { return v == 3 }, "3"},
		{`handsup_participants{role="speaker"}`, func(v float64) bool { return v == 1 }, "1"},
		{`handsup_rtp_packets_dropped_total{reason="malformed"}`, func(v float64) bool { return v == 5 }, "5"},
		{`handsup_udp_declared_peers`, func(v float64) bool { return v == 4 }, "4"},
		{`rate(handsup_ticks_total[5s])`, func(v float64) bool { return v > 40 && v < 60 }, "about 50"},
		{`handsup_tick_duration_seconds_count > 0`, func(v float64) bool { return v > 0 }, "> 0"},
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, c := range checks {
		var v float64
		var ok bool
		for time.Now().Before(deadline) {
			if v, ok = query(c.query); ok && c.ok(v) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if !ok || !c.ok(v) {
			t.Errorf("Prometheus says %s = %v (answered: %v), want %s", c.query, v, ok, c.want)
		} else {
			t.Logf("%s = %v", c.query, v)
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
