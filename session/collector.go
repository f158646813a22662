package session

import "github.com/prometheus/client_golang/prometheus"

// NewCollector exports a manager's counters (the handsup_rtcp_* families
// and handsup_participants_timed_out_total) to Prometheus, read at scrape
// time.
func NewCollector(m *Manager) prometheus.Collector {
	c := &collector{m: m}
	for _, f := range rtcpFamilies {
		c.descs = append(c.descs, prometheus.NewDesc(f.name, f.help, nil, nil))
	}
	return c
}

type collector struct {
	m     *Manager
	descs []*prometheus.Desc
}

var rtcpFamilies = [...]struct {
	name, help string
	get        func(*Stats) uint64
}{
	{"handsup_rtcp_packets_received_total",
		"RTCP compound packets from participants that parsed (receiver reports, NACKs, sender reports).",
		func(s *Stats) uint64 { return s.RTCPReceived }},
	{"handsup_rtcp_packets_malformed_total",
		"RTCP packets from participants dropped because they did not parse.",
		func(s *Stats) uint64 { return s.RTCPMalformed }},
	{"handsup_rtcp_packets_sent_total",
		"RTCP packets sent: sender reports on every output stream, receiver reports and NACKs to speakers.",
		func(s *Stats) uint64 { return s.RTCPSent }},
	{"handsup_rtcp_send_errors_total",
		"RTCP packets a participant's link failed to send.",
		func(s *Stats) uint64 { return s.RTCPSendErrors }},
	{"handsup_rtcp_nacks_received_total",
		"Sequence numbers participants NACKed on the streams sent to them.",
		func(s *Stats) uint64 { return s.NACKsReceived }},
	{"handsup_participants_timed_out_total",
		"Participants removed with reason timeout: silent for the idle timeout after sending RTP or RTCP, or gone by their transport's account (ICE consent).",
		func(s *Stats) uint64 { return s.TimedOut }},
	{"handsup_speaker_rtcp_session_errors_total",
		"Speakers left without receiver reports and NACKs on their incoming stream because its RTCP session failed to start. Should stay 0.",
		func(s *Stats) uint64 { return s.SpeakerSessionErrors }},
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.Stats()
	for i, f := range rtcpFamilies {
		ch <- prometheus.MustNewConstMetric(c.descs[i], prometheus.CounterValue, float64(f.get(&s)))
	}
}
