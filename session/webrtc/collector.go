package webrtc

import "github.com/prometheus/client_golang/prometheus"

// NewCollector exports a transport's counters (the handsup_webrtc_*
// families) to Prometheus, read at scrape time.
func NewCollector(t *Transport) prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("handsup_webrtc_"+name, help, labels, nil)
	}
	return &collector{t: t,
		peers:    d("peers", "WebRTC peers open."),
		opened:   d("peers_opened_total", "SDP offers answered with a new peer (WHIP and WHEP joins)."),
		refused:  d("offers_refused_total", "SDP offers refused: unparsable, no single audio section, no Opus."),
		failed:   d("peers_failed_total", "Peers whose connection failed: ICE consent lost (RFC 7675); their participants leave with reason timeout."),
		renego:   d("renegotiations_total", "New offers answered on open peers (ICE restarts)."),
		in:       d("packets_received_total", "Packets received from peers, by kind (rtp or rtcp).", "kind"),
		out:      d("packets_sent_total", "Packets sent to peers, by kind (rtp or rtcp).", "kind"),
		dropped:  d("packets_dropped_total", "Packets not sent or not delivered: not_ready (the peer's connection is not up), bad_header (an engine header that did not parse), malformed_rtcp (session RTCP that did not parse), unbound (received from a peer with no member bound).", "reason"),
		sendErrs: d("send_errors_total", "Packets SRTP or the socket refused."),
		syscalls: d("send_syscalls_total", "sendmmsg calls that sent peers' SRTP media over UDP; packets_sent_total{kind=\"rtp\"} per call is the batching factor."),
	}
}

type collector struct {
	t                                                                            *Transport
	peers, opened, refused, failed, renego, in, out, dropped, sendErrs, syscalls *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.peers, c.opened, c.refused, c.failed, c.renego, c.in, c.out, c.dropped, c.sendErrs, c.syscalls} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.t.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(s.Open))
	counter(c.opened, s.PeersOpened)
	counter(c.refused, s.OffersRefused)
	counter(c.failed, s.PeersFailed)
	counter(c.renego, s.Renegotiations)
	counter(c.in, s.RTPIn, "rtp")
	counter(c.in, s.RTCPIn, "rtcp")
	counter(c.out, s.RTPSent, "rtp")
	counter(c.out, s.RTCPSent, "rtcp")
	counter(c.dropped, s.NotReady, "not_ready")
	counter(c.dropped, s.BadHeader, "bad_header")
	counter(c.dropped, s.RTCPMalformed, "malformed_rtcp")
	counter(c.dropped, s.Unbound, "unbound")
	counter(c.sendErrs, s.SendErrors)
	counter(c.syscalls, s.SendSyscalls)
}
