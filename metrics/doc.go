// Package metrics exports a handsup engine's state to Prometheus.
//
// A Collector reads the engine at scrape time: Engine.Stats for the
// engine-wide totals, and Room.Snapshot for every open room. It keeps no
// series of its own beyond the tick-duration histogram, so closed rooms and
// departed participants leave nothing behind. It never carries
// per-participant labels. Register it on your own registry, not the global
// default one:
//
//	var m *metrics.Collector
//	e := engine.New(engine.Config{OnTick: func(d time.Duration) { m.ObserveTick(d) }})
//	m = metrics.New(e, metrics.Options{})
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(m, session.NewCollector(sessions), rtpudp.NewCollector(udp))
//	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//	go e.Run(ctx) // after m is set: OnTick reads it
//
// Engine.Config.OnTick is only called by Engine.Run; code that calls
// Engine.Tick itself should time the call and pass it to ObserveTick.
//
// # Families
//
// Engine: handsup_rooms, handsup_participants{role},
// handsup_participants_muted, handsup_hands_raised; RTP in and out
// (handsup_rtp_{packets,bytes}_{received,sent}_total) and
// handsup_rtp_packets_dropped_total{reason}, every engine.DropReason present
// from the start; the Opus work (handsup_decodes_total,
// handsup_fec_recovered_frames_total, handsup_concealed_frames_total,
// handsup_decode_errors_total, handsup_encodes_total,
// handsup_encode_errors_total, handsup_sink_errors_total and the gauges
// handsup_decodes_per_tick and handsup_encodes_per_tick, taken between two
// scrapes); the clock (handsup_ticks_total, handsup_tick_overruns_total,
// handsup_ticks_skipped_total, the histogram handsup_tick_duration_seconds).
//
// Jitter buffers: the W3C webrtc-stats counters of RTCInboundRtpStreamStats
// in snake case, summed over speakers (handsup_jitter_packets_lost_total,
// handsup_concealed_samples_total, ...), and the gauges
// handsup_jitter_buffer_target_delay_seconds and
// handsup_interarrival_jitter_seconds, the largest among speakers.
//
// The layers above the engine export their own families beside these, so
// that this package imports no transport: session.NewCollector the RTCP
// counters (handsup_rtcp_*), session/rtpudp.NewCollector the UDP socket's
// (handsup_udp_*).
//
// # Jitter counters stay monotonic
//
// A jitter buffer lives as long as its speaker is on stage: demotion,
// leaving or the room closing discard it, and its counters with it. A bare
// sum over current speakers would then fall, which Prometheus reads as a
// counter reset. The collector remembers each speaker's counters from the
// previous scrape (keyed by room and participant id, forgotten once folded)
// and, when a speaker disappears or its buffer restarts, adds what it last
// saw to a per-room (and, once the room closes, an engine-wide) remainder.
// What a departing speaker counted after the last scrape is not exported.
// packetsLost, which RTCP lets fall when late packets arrive, is clamped at
// 0 per speaker and exported as its running maximum.
//
// # Per-room labels
//
// With Options.PerRoom these families carry a room label (the room id),
// one series per open room, and no unlabelled engine-wide series:
//
//	handsup_participants{room,role}
//	handsup_rtp_packets_received_total{room}
//	handsup_rtp_packets_sent_total{room}
//	handsup_rtp_packets_dropped_total{room,reason}
//	handsup_total_samples_received_total{room}
//	handsup_concealed_samples_total{room}
//	handsup_jitter_buffer_target_delay_seconds{room}
//
// Engine-wide figures come from aggregating away the label:
// sum without (room) (rate(handsup_rtp_packets_received_total[5m])) for
// counters, max without (room) (...) for the target delay. A room's series
// vanish when it closes, so aggregate rates, not raw counters:
// rate(sum(...)) would see a closing room as a counter reset. All other
// families stay engine-wide, closed rooms included. Room ids are chosen by
// the application: PerRoom suits a deployment with tens or hundreds of
// rooms, not one with a room per user.
package metrics
