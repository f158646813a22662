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
//	e := engine.New(engine.Config{OnTick: func(t engine.TickTime) { m.ObserveTick(t.Took) }})
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
// Every family is server-wide: no room label (unless Options.PerRoom, below)
// and never a per-participant one; counters include closed rooms, so they
// never go down. docs/metrics.md lists them all with type, unit and labels.
//
// Engine: handsup_rooms, handsup_participants{role} (every role, 0 when
// idle), handsup_participants_muted, handsup_hands_raised,
// handsup_participants_joined_total{role},
// handsup_participants_left_total{reason}; RTP in and out
// (handsup_rtp_{packets,bytes}_{received,sent}_total) and
// handsup_rtp_packets_dropped_total{reason}, every engine.DropReason present
// from the start; the Opus work (handsup_decodes_total,
// handsup_fec_recovered_frames_total, handsup_concealed_frames_total,
// handsup_decode_errors_total, handsup_encodes_total,
// handsup_encode_errors_total, handsup_sink_errors_total: per tick is
// rate() of these over rate(handsup_ticks_total)); the clock
// (handsup_ticks_total, handsup_tick_overruns_total,
// handsup_ticks_skipped_total, the histogram handsup_tick_duration_seconds,
// and handsup_tick_work_seconds_total{part}: build, encode, send);
// tiers (handsup_participants_by_tier{tier}, the default tiers at 0 when
// unused, handsup_tier_switches_total).
//
// Histograms from engine.Counters: handsup_receiver_report_loss_ratio,
// handsup_receiver_report_rtt_seconds and
// handsup_receiver_report_jitter_seconds (what participants' receiver
// reports say of the stream sent to them, one observation per report) and
// handsup_speaker_buffer_delay_seconds (speakers' jitter-buffer delay, once
// a second per speaker whose stream played).
//
// Jitter buffers: the W3C webrtc-stats counters of RTCInboundRtpStreamStats
// in snake case, summed over speakers (handsup_jitter_packets_lost_total,
// handsup_concealed_samples_total, ...), and the gauges
// handsup_jitter_buffer_target_delay_seconds and
// handsup_interarrival_jitter_seconds, the largest among speakers.
//
// NewBuildInfo exports handsup_build_info{version,revision,goversion}. The
// layers above the engine export their own families beside these, so that
// this package imports no transport: session.NewCollector the RTCP
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
// # Per-room breakdown
//
// With Options.PerRoom the collector adds the handsup_room_* families, one
// series per open room labelled room (the room id), beside the server-wide
// ones, which do not change:
//
//	handsup_room_participants{room,role}
//	handsup_room_rtp_packets_received_total{room}
//	handsup_room_rtp_packets_sent_total{room}
//	handsup_room_rtp_packets_dropped_total{room,reason}
//	handsup_room_total_samples_received_total{room}
//	handsup_room_concealed_samples_total{room}
//	handsup_room_jitter_buffer_target_delay_seconds{room}
//
// At most Options.MaxRooms rooms (default 100) get series: a room takes a
// slot when a scrape first sees it with one free and keeps it while it is
// open. Rooms beyond the cap are left out of the handsup_room_* families
// (they count in the server-wide ones) and counted in the gauge
// handsup_metrics_rooms_omitted. A room's series vanish when it closes:
// use them for rate() within a room's life, and the server-wide families
// for totals. Room ids are chosen by the application: PerRoom suits a
// deployment with tens or hundreds of rooms, not one with a room per user.
package metrics
