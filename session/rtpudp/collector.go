package rtpudp

import "github.com/prometheus/client_golang/prometheus"

// NewCollector exports a transport's counters (the handsup_udp_*
// families) to Prometheus, read at scrape time.
func NewCollector(t *Transport) prometheus.Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("handsup_udp_"+name, help, labels, nil)
	}
	return &collector{t: t,
		in:        d("datagrams_received_total", "UDP datagrams received from declared participant addresses, by kind (rtp or rtcp, told apart as in RFC 5761; rtcp counts both the RTP port and the RTCP port, the RTP port + 1).", "kind"),
		rtcpPort:  d("rtcp_port_datagrams_received_total", "Of the rtcp datagrams received, those that came to the RTCP port (the RTP port + 1, where ffmpeg sends its sender reports)."),
		dropped:   d("datagrams_dropped_total", "UDP datagrams dropped before the engine: unknown_source (from an address no participant declared or learned, without a join SSRC: stale clients, spoofing, scans), unbound (RTP or RTCP from a declared address whose participant is not bound yet), oversized (over 1500 bytes), not_rtcp (other than RTCP on the RTCP port), move_limited (a join SSRC from a new address less than the move interval after the last move).", "reason"),
		out:       d("datagrams_sent_total", "UDP datagrams sent to participants."),
		unsent:    d("datagrams_unsent_total", "Packets not sent: not_latched (a participant that joined without an address has not sent its join SSRC yet), unconfirmed (a receive address on another host than the participant's source has not sent a datagram, and its few packets before that are spent).", "reason"),
		refused:   d("addresses_refused_total", "Participant addresses refused at join (or when latching): unspecified (0.0.0.0, ::, port 0), multicast, broadcast, own (one of the server's own sockets), taken (another participant's source or receive address).", "reason"),
		confirmed: d("addresses_confirmed_total", "Receive addresses on another host than their participant's source that sent a datagram, and so get the stream."),
		learned:   d("addresses_learned_total", "Participants that joined without an address and latched onto the first source presenting their join SSRC."),
		moves:     d("address_changes_total", "Latched participants that followed their join SSRC to a new source address (NAT rebinding, network change)."),
		syscalls:  d("send_syscalls_total", "sendmmsg calls made; datagrams sent per call is the batching factor, and a falling one costs CPU."),
		sendErrs:  d("send_errors_total", "Datagrams that failed to send (socket buffer full, destination unreachable)."),
		readErrs:  d("read_errors_total", "Errors reading the UDP socket, other than its closing."),
		peers:     d("declared_peers", "Participant addresses declared on the UDP transport."),
	}
}

type collector struct {
	t                                                  *Transport
	in, rtcpPort, dropped, out, unsent, learned, moves *prometheus.Desc
	syscalls, sendErrs, readErrs, peers                *prometheus.Desc
	refused, confirmed                                 *prometheus.Desc
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.in, c.rtcpPort, c.dropped, c.out, c.unsent, c.learned, c.moves, c.syscalls, c.sendErrs, c.readErrs, c.peers, c.refused, c.confirmed} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.t.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.in, s.RTPIn, "rtp")
	counter(c.in, s.RTCPIn, "rtcp")
	counter(c.rtcpPort, s.RTCPPortIn)
	counter(c.dropped, s.UnknownSource, "unknown_source")
	counter(c.dropped, s.Unbound, "unbound")
	counter(c.dropped, s.Oversized, "oversized")
	counter(c.dropped, s.NotRTCP, "not_rtcp")
	counter(c.dropped, s.MoveLimited, "move_limited")
	counter(c.unsent, s.Unlatched, "not_latched")
	counter(c.unsent, s.Unconfirmed, "unconfirmed")
	for r, n := range map[refusal]uint64{refusedUnspecified: s.Refused.Unspecified, refusedMulticast: s.Refused.Multicast,
		refusedBroadcast: s.Refused.Broadcast, refusedOwn: s.Refused.Own, refusedTaken: s.Refused.Taken} {
		counter(c.refused, n, r.String())
	}
	counter(c.confirmed, s.Confirmed)
	counter(c.learned, s.Latched)
	counter(c.moves, s.AddressChanges)
	counter(c.out, s.PacketsOut)
	counter(c.syscalls, s.SendSyscalls)
	counter(c.sendErrs, s.SendErrors)
	counter(c.readErrs, s.ReadErrors)
	ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(s.DeclaredPeers))
}
