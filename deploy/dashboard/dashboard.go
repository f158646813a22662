package dashboard

//go:generate go run ../gen

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// UID is the dashboard's uid: importing it again replaces it.
const UID = "handsup-overview"

// sel is the label selector every query takes: the job variable.
const sel = `job=~"$job"`

// ds is the datasource variable every panel reads.
var ds = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

// target is one query of a panel: PromQL and its legend.
type target struct{ expr, legend string }

// panel is one time series (or stat) panel.
type panel struct {
	title, desc, unit string
	stat              bool // a single figure instead of a graph
	targets           []target
}

// row is a titled group of panels.
type row struct {
	title  string
	panels []panel
}

// rate is rate(metric{job}[$__rate_interval]) summed by the given labels.
func rate(metric, by string) string {
	return fmt.Sprintf("sum by (%s) (rate(%s{%s}[$__rate_interval]))", by, metric, sel)
}

// quantile is the q-quantile of a histogram over the rate interval, by
// the given labels (le added).
func quantile(q, metric, by string) string {
	by = strings.TrimPrefix(by+", le", ", ")
	return fmt.Sprintf("histogram_quantile(%s, sum by (%s) (rate(%s_bucket{%s}[$__rate_interval])))", q, by, metric, sel)
}

func rows() []row {
	return []row{
		{"Capacity", []panel{
			{title: "Rooms", stat: true, desc: "Open rooms (handsup_rooms).",
				targets: []target{{fmt.Sprintf("sum(handsup_rooms{%s})", sel), "rooms"}}},
			{title: "Participants by role", desc: "Participants in open rooms: listeners, speakers, moderators.",
				targets: []target{{fmt.Sprintf("sum by (role) (handsup_participants{%s})", sel), "{{role}}"}}},
			{title: "Tick duration p99", unit: "s", desc: "99th percentile of one engine tick (all rooms) over 5 min, per instance (recording rule). Past 20 ms the engine falls behind real time.",
				targets: []target{{fmt.Sprintf("instance:handsup_tick_duration_seconds:p99_5m{%s}", sel), "{{instance}}"}}},
			{title: "Tick overruns and skipped ticks", unit: "ops", desc: "Ticks started late (overruns: audio still on time) and ticks skipped (20 ms of audio lost in every room), per second; and room ticks whose sends ran split across workers (handsup_split_send_ticks_total: a room too large, or sends too slow, for one core to keep on time).",
				targets: []target{
					{rate("handsup_tick_overruns_total", "instance"), "overruns {{instance}}"},
					{rate("handsup_ticks_skipped_total", "instance"), "skipped {{instance}}"},
					{rate("handsup_split_send_ticks_total", "instance"), "split sends {{instance}}"},
				}},
			{title: "Load shedding", desc: "1 while the engine sheds load: its ticks ran near their 20 ms, and every room's encoders run at a lower complexity until they have run well within it for 2 s (handsup_load_shedding); and the times it started, per minute.",
				targets: []target{
					{fmt.Sprintf("max by (instance) (handsup_load_shedding{%s})", sel), "shedding {{instance}}"},
					{fmt.Sprintf("60 * sum by (instance) (rate(handsup_load_shed_spells_total{%s}[$__rate_interval]))", sel), "spells a minute {{instance}}"},
				}},
			{title: "CPU per tick", unit: "s", desc: "Process CPU time per engine tick over 5 min (recording rule): the fraction of a core one 20 ms tick takes is this over 0.02.",
				targets: []target{{fmt.Sprintf("instance:handsup_cpu_seconds_per_tick:rate5m{%s}", sel), "{{instance}}"}}},
			{title: "Tick work by part", desc: "Cores the rooms' ticks keep busy, by part (handsup_tick_work_seconds_total): build (under the room's lock: decodes, mix, every participant's packet queued), encode (Opus; falls while the engine sheds load), send (the kernel's sends). Says which part a long tick spent its time in.",
				targets: []target{{rate("handsup_tick_work_seconds_total", "instance, part"), "{{part}} {{instance}}"}}},
			{title: "Codec work per tick", desc: "Opus encodes and decodes per tick: encodes are the main CPU cost (one shared mix per tier in use plus one per speaker heard).",
				targets: []target{
					{fmt.Sprintf("sum by (instance) (rate(handsup_encodes_total{%[1]s}[$__rate_interval])) / sum by (instance) (rate(handsup_ticks_total{%[1]s}[$__rate_interval]))", sel), "encodes {{instance}}"},
					{fmt.Sprintf("sum by (instance) (rate(handsup_decodes_total{%[1]s}[$__rate_interval])) / sum by (instance) (rate(handsup_ticks_total{%[1]s}[$__rate_interval]))", sel), "decodes {{instance}}"},
				}},
			{title: "Joins and leaves", unit: "ops", desc: "Joins by role and leaves by reason (left, kicked, timeout, room_closed, other), per second.",
				targets: []target{
					{rate("handsup_participants_joined_total", "role"), "joined {{role}}"},
					{rate("handsup_participants_left_total", "reason"), "left {{reason}}"},
				}},
		}},
		{"Listener experience", []panel{
			{title: "Reported loss", unit: "percentunit", desc: "Fraction lost that participants' receiver reports give for the stream sent to them: median and 95th percentile over the reports.",
				targets: []target{
					{quantile("0.5", "handsup_receiver_report_loss_ratio", ""), "p50"},
					{fmt.Sprintf("job:handsup_receiver_report_loss_ratio:p95_5m{%s}", sel), "p95 (5 min)"},
				}},
			{title: "Reported round trip", unit: "s", desc: "Round trip to participants from their receiver reports.",
				targets: []target{
					{quantile("0.5", "handsup_receiver_report_rtt_seconds", ""), "p50"},
					{quantile("0.95", "handsup_receiver_report_rtt_seconds", ""), "p95"},
				}},
			{title: "Reported jitter", unit: "s", desc: "Interarrival jitter participants report for the stream sent to them.",
				targets: []target{
					{quantile("0.5", "handsup_receiver_report_jitter_seconds", ""), "p50"},
					{quantile("0.95", "handsup_receiver_report_jitter_seconds", ""), "p95"},
				}},
			{title: "Speakers' jitter-buffer delay", unit: "s", desc: "The delay speakers' jitter buffers add (sampled once a second per talking speaker): part of the mouth-to-ear delay everyone hears.",
				targets: []target{
					{quantile("0.5", "handsup_speaker_buffer_delay_seconds", ""), "p50"},
					{quantile("0.95", "handsup_speaker_buffer_delay_seconds", ""), "p95"},
				}},
			{title: "Concealment", unit: "percentunit", desc: "Share of speakers' samples the decoders made up because packets were missing (recording rule over 5 min): what listeners hear as glitches.",
				targets: []target{{fmt.Sprintf("job:handsup_concealed_samples:ratio_rate5m{%s}", sel), "concealed"}}},
			{title: "Participants by tier", desc: "Participants on each output tier: hi (clean), mid (FEC), low (RED). Rising mid and low mean listeners report loss.",
				targets: []target{
					{fmt.Sprintf("sum by (tier) (handsup_participants_by_tier{%s})", sel), "{{tier}}"},
				}},
			{title: "Recovery: FEC, RED, NACK", unit: "ops", desc: "Lost frames rebuilt from in-band FEC and from RED, packets sent again for NACKs and NACKs refused, per second; tier switches.",
				targets: []target{
					{rate("handsup_fec_recovered_frames_total", "job"), "FEC recovered"},
					{rate("handsup_red_recovered_packets_total", "job"), "RED recovered"},
					{rate("handsup_retransmitted_packets_total", "job"), "retransmitted"},
					{rate("handsup_nacks_refused_total", "job"), "NACKs refused"},
					{rate("handsup_tier_switches_total", "job"), "tier switches"},
				}},
		}},
		{"Ingress health", []panel{
			{title: "RTP dropped by reason", unit: "pps", desc: "Speakers' packets the engine did not play: late and overflow point at the network; malformed, payload_type and bad_opus at a client.",
				targets: []target{{rate("handsup_rtp_packets_dropped_total", "reason"), "{{reason}}"}}},
			{title: "UDP datagrams dropped by reason", unit: "pps", desc: "Datagrams dropped before the engine: unknown_source (no participant declared the address: stale clients, scans), unbound, oversized, not_rtcp, move_limited.",
				targets: []target{{rate("handsup_udp_datagrams_dropped_total", "reason"), "{{reason}}"}}},
			{title: "WebRTC packets dropped by reason", unit: "pps", desc: "WebRTC datagrams dropped: not_ready, bad_header, malformed_rtcp, unbound (no data when WebRTC is off).",
				targets: []target{{rate("handsup_webrtc_packets_dropped_total", "reason"), "{{reason}}"}}},
			{title: "RTCP", unit: "pps", desc: "RTCP from participants (parsed and malformed), RTCP sent, NACKed sequence numbers received.",
				targets: []target{
					{rate("handsup_rtcp_packets_received_total", "job"), "received"},
					{rate("handsup_rtcp_packets_malformed_total", "job"), "malformed"},
					{rate("handsup_rtcp_packets_sent_total", "job"), "sent"},
					{rate("handsup_rtcp_nacks_received_total", "job"), "NACKs received"},
				}},
			{title: "Send errors", unit: "pps", desc: "Datagrams the UDP socket failed to send, packets participants' sinks refused, RTCP that failed to send.",
				targets: []target{
					{rate("handsup_udp_send_errors_total", "instance"), "UDP {{instance}}"},
					{rate("handsup_sink_errors_total", "instance"), "sink {{instance}}"},
					{rate("handsup_rtcp_send_errors_total", "instance"), "RTCP {{instance}}"},
				}},
			{title: "Traffic", unit: "pps", desc: "RTP packets received from speakers and sent to participants.",
				targets: []target{
					{rate("handsup_rtp_packets_received_total", "job"), "received"},
					{rate("handsup_rtp_packets_sent_total", "job"), "sent"},
				}},
		}},
		{"API", []panel{
			{title: "Requests by route and code", unit: "reqps", desc: "HTTP requests per second, by route pattern and status code.",
				targets: []target{{rate("handsup_http_requests_total", "route, code"), "{{code}} {{route}}"}}},
			{title: "Request latency p95", unit: "s", desc: "95th percentile time to answer, by route (event streams excluded: they last as long as their client).",
				targets: []target{{fmt.Sprintf(`histogram_quantile(0.95, sum by (route, le) (rate(handsup_http_request_duration_seconds_bucket{%s, route!="/v1/rooms/{room}/events"}[$__rate_interval])))`, sel), "{{route}}"}}},
			{title: "Event streams", desc: "Open event streams, and streams cut for falling behind (per second).",
				targets: []target{
					{fmt.Sprintf("sum(handsup_event_subscribers{%s})", sel), "open"},
					{rate("handsup_event_streams_cut_total", "job"), "cut"},
				}},
			{title: "Ready", stat: true, desc: "Instances serving and not shutting down (handsup_ready); /readyz answers 200 on those.",
				targets: []target{{fmt.Sprintf("sum(handsup_ready{%s})", sel), "ready"}}},
			{title: "Build", stat: true, desc: "Instances by version and revision (handsup_build_info).",
				targets: []target{{fmt.Sprintf("count by (version, revision) (handsup_build_info{%s})", sel), "{{version}} {{revision}}"}}},
		}},
	}
}

func queries(ts []target) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], len(ts))
	for i, t := range ts {
		out[i] = prometheus.NewDataqueryBuilder().Expr(t.expr).LegendFormat(t.legend).
			RefId(string(rune('A' + i))).Datasource(ds)
	}
	return out
}

// New builds the dashboard.
func New() (dashboard.Dashboard, error) {
	b := dashboard.NewDashboardBuilder("handsup").
		Uid(UID).
		Description("handsup audio rooms: capacity, listener experience, ingress health, API. Generated by deploy/dashboard; reads the recording rules of deploy/prometheus/recording.yml.").
		Tags([]string{"handsup", "audio"}).
		Refresh("30s").
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus")).
		WithVariable(dashboard.NewQueryVariableBuilder("job").Label("Job").
			Datasource(ds).
			Query(dashboard.StringOrMap{String: cog.ToPtr("label_values(handsup_build_info, job)")}).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Multi(true).IncludeAll(true).AllValue(".+"))
	var id uint32 // every panel and row its own id, in order
	for _, r := range rows() {
		id++
		b = b.WithRow(dashboard.NewRowBuilder(r.title).Id(id))
		for _, p := range r.panels {
			id++
			if p.stat {
				b = b.WithPanel(stat.NewPanelBuilder().Id(id).Title(p.title).Description(p.desc).Unit(p.unit).
					Datasource(ds).Targets(queries(p.targets)).Height(4).Span(6).
					ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"})))
				continue
			}
			b = b.WithPanel(timeseries.NewPanelBuilder().Id(id).Title(p.title).Description(p.desc).Unit(p.unit).
				Datasource(ds).Targets(queries(p.targets)).Height(8).Span(12).Min(0))
		}
	}
	return b.Build()
}

// JSON is the dashboard as Grafana imports it, indented, with a final
// newline.
func JSON() ([]byte, error) {
	d, err := New()
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// Query is one panel query of a dashboard.
type Query struct {
	Panel, Expr string
}

// Queries reads every panel's queries out of a dashboard's JSON, rows'
// nested panels included.
func Queries(dashboardJSON []byte) ([]Query, error) {
	type jsonPanel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(dashboardJSON, &d); err != nil {
		return nil, err
	}
	var out []Query
	var walk func([]json.RawMessage) error
	walk = func(ps []json.RawMessage) error {
		for _, raw := range ps {
			var p jsonPanel
			if err := json.Unmarshal(raw, &p); err != nil {
				return err
			}
			for _, t := range p.Targets {
				if t.Expr != "" {
					out = append(out, Query{Panel: p.Title, Expr: t.Expr})
				}
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(d.Panels)
}
