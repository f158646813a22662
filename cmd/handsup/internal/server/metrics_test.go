package server

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeMetrics GETs /metrics and parses it.
func scrapeMetrics(t *testing.T, ts *testServer) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(ts.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// seriesKey is a series' family and labels, sorted.
func seriesKey(name string, m *dto.Metric) string {
	var ls []string
	for _, l := range m.Label {
		ls = append(ls, l.GetName()+"="+l.GetValue())
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

// counterValues maps every counter series, and every histogram's count and
// sum, to its value.
func counterValues(mfs map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for name, mf := range mfs {
		for _, m := range mf.Metric {
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[seriesKey(name, m)] = m.Counter.GetValue()
			case dto.MetricType_HISTOGRAM:
				out[seriesKey(name+"_count", m)] = float64(m.Histogram.GetSampleCount())
				out[seriesKey(name+"_sum", m)] = m.Histogram.GetSampleSum()
			}
		}
	}
	return out
}

func roomLabelled(mfs map[string]*dto.MetricFamily) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for name, mf := range mfs {
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "room" {
					if out[name] == nil {
						out[name] = map[string]bool{}
					}
					out[name][l.GetValue()] = true
				}
			}
		}
	}
	return out
}

func gaugeValue(t *testing.T, mfs map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	want := seriesKey(name, &dto.Metric{})
	if len(labels) > 0 {
		sort.Strings(labels)
		want = name + "{" + strings.Join(labels, ",") + "}"
	}
	for _, m := range mfs[name].GetMetric() {
		if seriesKey(name, m) == want {
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("/metrics has no %s", want)
	return 0
}

// TestMetricsRoomLabel: with the default configuration a server with 100
// rooms exports no room label; with MetricsPerRoom it does, for at most
// MetricsPerRoomMax rooms.
func TestMetricsRoomLabel(t *testing.T) {
	for _, tc := range []struct {
		name     string
		perRoom  bool
		labelled int
	}{{"default", false, 0}, {"per-room capped", true, 10}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, adminTok, func(c *Config) {
				c.MetricsPerRoom, c.MetricsPerRoomMax = tc.perRoom, 10
			})
			for i := range 100 {
				ts.mustCall("POST", "/v1/rooms", fmt.Sprintf(`{"id":"room-%d"}`, i), http.StatusCreated, nil)
			}
			ts.mustCall("POST", "/v1/rooms/room-0/participants",
				`{"id":"l","role":"listener","rtp":{"addr":"127.0.0.1:9"}}`, http.StatusCreated, nil)
			mfs := scrapeMetrics(t, ts)
			if got := gaugeValue(t, mfs, "handsup_rooms"); got != 100 {
				t.Errorf("handsup_rooms %v, want 100", got)
			}
			if got := gaugeValue(t, mfs, "handsup_participants", "role=listener"); got != 1 {
				t.Errorf("handsup_participants{role=listener} %v, want 1", got)
			}
			labelled := roomLabelled(mfs)
			if tc.labelled == 0 {
				if len(labelled) != 0 {
					t.Fatalf("room labels by default: %v", labelled)
				}
				return
			}
			if n := len(labelled["handsup_room_participants"]); n != tc.labelled {
				t.Errorf("%d rooms with series, want the cap %d", n, tc.labelled)
			}
			for name, rooms := range labelled {
				if !strings.HasPrefix(name, "handsup_room_") || len(rooms) > tc.labelled {
					t.Errorf("%s: room label on %d rooms", name, len(rooms))
				}
			}
			if got := gaugeValue(t, mfs, "handsup_metrics_rooms_omitted"); got != 90 {
				t.Errorf("handsup_metrics_rooms_omitted %v, want 90", got)
			}
		})
	}
}

// TestCountersSurviveRoomClose: a room with a speaker and listeners runs,
// then closes; no server-wide counter (nor histogram count or sum) is
// lower after than before.
func TestCountersSurviveRoomClose(t *testing.T) {
	ts := startServer(t, adminTok, func(c *Config) { c.MetricsPerRoom = true })
	rtpAddr := net.UDPAddrFromAddrPort(ts.s.RTPAddr())
	speaker := newUDPClient(t, rtpAddr)
	listener := newUDPClient(t, rtpAddr)
	ts.mustCall("POST", "/v1/rooms", `{"id":"short"}`, http.StatusCreated, nil)
	ts.mustCall("POST", "/v1/rooms/short/participants",
		fmt.Sprintf(`{"id":"s","role":"speaker","rtp":{"addr":%q}}`, speaker.addr()), http.StatusCreated, nil)
	ts.mustCall("POST", "/v1/rooms/short/participants",
		fmt.Sprintf(`{"id":"l","role":"listener","rtp":{"addr":%q}}`, listener.addr()), http.StatusCreated, nil)
	for range 60 {
		speaker.speak(440)
		time.Sleep(20 * time.Millisecond)
	}
	if !poll(func() bool { listener.mu.Lock(); defer listener.mu.Unlock(); return listener.pkts > 0 }) {
		t.Fatal("the listener heard nothing")
	}
	before := counterValues(scrapeMetrics(t, ts))
	if before["handsup_rtp_packets_sent_total{}"] == 0 || before["handsup_room_rtp_packets_received_total{room=short}"] == 0 {
		t.Fatalf("nothing counted before the close: %v", before)
	}
	ts.mustCall("DELETE", "/v1/rooms/short", "", http.StatusNoContent, nil)
	after := counterValues(scrapeMetrics(t, ts))
	for k, v := range before {
		if strings.HasPrefix(k, "handsup_room_") {
			if _, ok := after[k]; ok {
				t.Errorf("%s still exported after its room closed", k)
			}
			continue
		}
		if strings.HasPrefix(k, "handsup_http_") || strings.HasPrefix(k, "go_") || strings.HasPrefix(k, "process_") {
			continue // requests go on; the runtime's are not ours
		}
		got, ok := after[k]
		if !ok {
			t.Errorf("%s vanished when the room closed", k)
		} else if got < v {
			t.Errorf("%s fell from %v to %v when the room closed", k, v, got)
		}
	}
	if got := after["handsup_participants_left_total{reason=room_closed}"]; got != 2 {
		t.Errorf("participants left with room_closed: %v, want 2", got)
	}
}

// TestHTTPMetrics: requests are counted by the route pattern, never the
// raw path; build_info is exported.
func TestHTTPMetrics(t *testing.T) {
	ts := startServer(t, adminTok)
	ts.mustCall("POST", "/v1/rooms", `{"id":"a"}`, http.StatusCreated, nil)
	ts.mustCall("GET", "/v1/rooms/a", "", http.StatusOK, nil)
	ts.mustCall("GET", "/v1/rooms/nope", "", http.StatusNotFound, nil)
	ts.mustCall("GET", "/no/such/page", "", http.StatusNotFound, nil)
	mfs := scrapeMetrics(t, ts)
	got := counterValues(mfs)
	for k, want := range map[string]float64{
		`handsup_http_requests_total{code=201,method=post,route=/v1/rooms}`:              1,
		`handsup_http_requests_total{code=200,method=get,route=/v1/rooms/{room}}`:        1,
		`handsup_http_requests_total{code=404,method=get,route=/v1/rooms/{room}}`:        1,
		`handsup_http_requests_total{code=404,method=get,route=unmatched}`:               1,
		`handsup_http_request_duration_seconds_count{method=get,route=/v1/rooms/{room}}`: 2,
	} {
		if got[k] != want {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	for k := range got {
		if strings.Contains(k, "/v1/rooms/a") || strings.Contains(k, "nope") || strings.Contains(k, "/no/such") {
			t.Errorf("a raw path in a label: %s", k)
		}
	}
	if v := gaugeValue(t, mfs, "handsup_build_info", buildInfoLabels(mfs)...); v != 1 {
		t.Errorf("handsup_build_info %v, want 1", v)
	}
}

func buildInfoLabels(mfs map[string]*dto.MetricFamily) []string {
	var out []string
	for _, m := range mfs["handsup_build_info"].GetMetric() {
		for _, l := range m.Label {
			out = append(out, l.GetName()+"="+l.GetValue())
		}
	}
	return out
}

// TestMetricsDocMatchesServer: docs/metrics.md lists exactly the handsup_
// families a server with WebRTC and MetricsPerRoom serves, each with its
// type and labels.
func TestMetricsDocMatchesServer(t *testing.T) {
	doc, err := os.ReadFile("../../../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	row := regexp.MustCompile("(?m)^\\| `(handsup_\\w+)` \\| (\\w+) \\| [^|]* \\| ([^|]*) \\|")
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		labels := strings.ReplaceAll(strings.ReplaceAll(strings.TrimSpace(m[3]), "`", ""), " ", "")
		if labels == "—" {
			labels = ""
		}
		listed[m[1]] = m[2] + " {" + labels + "}"
	}

	ts := startServer(t, adminTok, func(c *Config) { c.MetricsPerRoom = true })
	ts.mustCall("POST", "/v1/rooms", `{"id":"doc"}`, http.StatusCreated, nil)
	ts.mustCall("POST", "/v1/rooms/doc/participants", `{"id":"l","role":"listener","rtp":{"addr":"127.0.0.1:9"}}`, http.StatusCreated, nil)
	served := map[string]string{}
	for name, mf := range scrapeMetrics(t, ts) {
		if !strings.HasPrefix(name, "handsup_") {
			continue
		}
		set := map[string]bool{}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				set[l.GetName()] = true
			}
		}
		var labels []string
		for l := range set {
			labels = append(labels, l)
		}
		sort.Strings(labels)
		served[name] = strings.ToLower(mf.GetType().String()) + " {" + strings.Join(labels, ",") + "}"
	}
	for name, want := range served {
		if got, ok := listed[name]; !ok {
			t.Errorf("docs/metrics.md lacks %s (%s)", name, want)
		} else if got != want {
			t.Errorf("docs/metrics.md: %s is %s, /metrics serves %s", name, got, want)
		}
	}
	for name := range listed {
		if _, ok := served[name]; !ok {
			t.Errorf("docs/metrics.md lists %s, which /metrics does not serve", name)
		}
	}

	// The README and docs/operations.md name only families that exist (a
	// histogram's _bucket, _count or _sum, or a prefix ending in _*).
	mention := regexp.MustCompile(`(?:^|[^\w:])(handsup_\w+)(\*)?`)
	for _, file := range []string{"../../../../README.md", "../../../../docs/operations.md"} {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mention.FindAllStringSubmatch(string(text), -1) {
			name, prefix := m[1], m[2] != ""
			if name == "handsup_token" { // the event stream's cookie
				continue
			}
			found := false
			for family := range served {
				base := name
				for _, suffix := range []string{"_bucket", "_count", "_sum"} {
					base = strings.TrimSuffix(base, suffix)
				}
				if family == name || family == base || prefix && strings.HasPrefix(family, name) {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("%s names %s, which /metrics does not serve", filepath.Base(file), m[0])
			}
		}
	}
}
