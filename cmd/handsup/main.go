package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/handsup-audio/handsup/access"
	"github.com/handsup-audio/handsup/cmd/handsup/internal/server"
	"github.com/handsup-audio/handsup/cmd/internal/procs"
	"github.com/handsup-audio/handsup/engine"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "handsup:", err)
		os.Exit(2)
	}
}

// run parses flags and environment, then serves until SIGINT or SIGTERM.
func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("handsup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg       server.Config
		logFormat string
		logLevel  string
		publicIPs string
	)
	str := func(p *string, name, def, usage string) {
		fs.StringVar(p, name, env(name, def), usage+" (env "+envName(name)+")")
	}
	str(&cfg.HTTPAddr, "http", "127.0.0.1:8080", "HTTP API, metrics and health `address`")
	str(&cfg.RTPAddr, "rtp", "127.0.0.1:5004", "UDP `address` for RTP and RTCP, shared by every participant")
	str(&cfg.PublicRTPAddr, "public-rtp", "", "RTP `address` told to clients, when it differs from -rtp (NAT, containers)")
	str(&cfg.WebRTC.UDPAddr, "webrtc-udp", "127.0.0.1:5010", "UDP `address` of ICE for every WebRTC (WHIP/WHEP) participant; empty turns WebRTC off")
	str(&cfg.WebRTC.TCPAddr, "webrtc-tcp", "", "TCP `address` for passive ICE-TCP, for networks that block UDP; empty: none")
	str(&publicIPs, "public-ip", "", "comma-separated public `IPs` announced in WebRTC answers instead of the host's (1:1 NAT, load balancer)")
	adminTokenFile := fs.String("admin-token-file", env("admin-token-file", ""), "`file` holding the admin bearer token (at least 16 characters); or set HANDSUP_ADMIN_TOKEN; required when -http is not a loopback address (env HANDSUP_ADMIN_TOKEN_FILE)")
	tokenKeyFile := fs.String("token-key-file", env("token-key-file", ""), "`file` holding the key of participant tokens, hex or base64, at least 32 bytes, shared with the app's backend; or set HANDSUP_TOKEN_KEY; default: random at each start (env HANDSUP_TOKEN_KEY_FILE)")
	kickBan := fs.Duration("kick-ban", envDuration("kick-ban", 10*time.Minute), "how long a kicked participant's identity may not rejoin the room with a token; 0: no ban (env HANDSUP_KICK_BAN)")
	str(&cfg.DemoRoom, "demo-room", "", "create an open room with this `id` at start")
	str(&logFormat, "log-format", "text", "log `format`: text or json")
	str(&logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	rtcpPort := fs.Bool("rtcp-port", env("rtcp-port", "true") != "false", "also read RTCP on the RTP port + 1, where ffmpeg sends it (env HANDSUP_RTCP_PORT=false turns it off)")
	idle := fs.String("idle-timeout", env("idle-timeout", "30s"), "remove a participant that sent RTP or RTCP and then nothing for this `duration`; 0 or negative: never (env HANDSUP_IDLE_TIMEOUT)")
	stunURLs := listFlag{list: splitList(env("stun", ""))}
	turnURLs := listFlag{list: splitList(env("turn", ""))}
	fs.Var(&stunURLs, "stun", "STUN `URL` handed to WebRTC clients in answers' Link headers, e.g. stun:stun.example.net:3478; repeatable or comma-separated (env HANDSUP_STUN)")
	fs.Var(&turnURLs, "turn", "TURN `URL` handed to WebRTC clients with ephemeral credentials, e.g. turn:turn.example.net:3478?transport=udp; repeatable or comma-separated; needs the shared secret (env HANDSUP_TURN)")
	turnSecretFile := fs.String("turn-secret-file", env("turn-secret-file", ""), "`file` holding the TURN server's shared secret (coturn static-auth-secret); or set HANDSUP_TURN_SECRET (env HANDSUP_TURN_SECRET_FILE)")
	turnTTL := fs.Duration("turn-ttl", envDuration("turn-ttl", 24*time.Hour), "how long the TURN credentials of an answer stay valid (env HANDSUP_TURN_TTL)")
	workers := fs.Int("workers", envInt("workers"), "engine workers ticking rooms; 0: one per CPU (env HANDSUP_WORKERS)")
	fs.IntVar(&cfg.Phases, "phases", envInt("phases"), "clocks the rooms are spread over, their ticks 20 ms/phases apart, at most 10; 1 ticks every room at once (docs/performance.md); 0: 4 (env HANDSUP_PHASES)")
	fs.IntVar(&cfg.ShedComplexity, "shed-complexity", envInt("shed-complexity"), "Opus complexity every room's encoders drop to while ticks run near their 20 ms (load shedding, handsup_load_shedding), 1 to 10; 0: 1; -1: never shed (env HANDSUP_SHED_COMPLEXITY)")
	fs.DurationVar(&cfg.JitterExtraDelay, "jitter-extra", envDuration("jitter-extra", 0), "up to this much more delay on a speaker's jittery uplink (none on a clean one) for fewer late packets concealed: at 60 ± 30 ms of jitter 8 ms halved them; 0 to 200ms (env HANDSUP_JITTER_EXTRA)")
	fs.IntVar(&cfg.MaxRooms, "max-rooms", envInt("max-rooms"), "rooms at most; 0: 1000 (env HANDSUP_MAX_ROOMS)")
	fs.IntVar(&cfg.MaxParticipants, "max-participants", envInt("max-participants"), "participants in every room at most; 0: 10000 (env HANDSUP_MAX_PARTICIPANTS)")
	fs.IntVar(&cfg.MaxRoomParticipants, "max-room-participants", envInt("max-room-participants"), "a room's members at most, listeners included; 0: 5000 (env HANDSUP_MAX_ROOM_PARTICIPANTS)")
	fs.IntVar(&cfg.MaxSpeakers, "max-speakers", envInt("max-speakers"), "a room's stage when its request sets no max_speakers; 0: 100 (env HANDSUP_MAX_SPEAKERS)")
	fs.Float64Var(&cfg.JoinRate, "join-rate", envFloat("join-rate"), "joins a second, every room; past it 429; 0: 50 (env HANDSUP_JOIN_RATE)")
	fs.IntVar(&cfg.JoinBurst, "join-burst", envInt("join-burst"), "joins at once before -join-rate applies; 0: 100 (env HANDSUP_JOIN_BURST)")
	fs.Float64Var(&cfg.MaxTickLoad, "max-tick-load", envFloat("max-tick-load"), "refuse new rooms and joins (503) while a tick of every room takes more than this share of 20 ms, e.g. 0.5; 0: off (env HANDSUP_MAX_TICK_LOAD)")
	fs.IntVar(&cfg.MaxEventStreams, "max-event-streams", envInt("max-event-streams"), "open event streams at most, every room; 0: 10000 (env HANDSUP_MAX_EVENT_STREAMS)")
	fs.IntVar(&cfg.MaxRoomEventStreams, "max-room-event-streams", envInt("max-room-event-streams"), "a room's open event streams at most; 0: 5000 (env HANDSUP_MAX_ROOM_EVENT_STREAMS)")
	fs.IntVar(&cfg.MaxConns, "max-conns", envInt("max-conns"), "open API connections at most; past it 503 and close; 0: 10000 (env HANDSUP_MAX_CONNS)")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", envDuration("write-timeout", 30*time.Second), "time to write an API answer, event streams aside (env HANDSUP_WRITE_TIMEOUT)")
	fs.DurationVar(&cfg.BodyTimeout, "body-timeout", envDuration("body-timeout", 10*time.Second), "time to read a request's body; past it 408 (env HANDSUP_BODY_TIMEOUT)")
	fs.BoolVar(&cfg.MetricsPerRoom, "metrics-per-room", env("metrics-per-room", "") == "true", "add the handsup_room_* families to /metrics, a series per open room labelled room (env HANDSUP_METRICS_PER_ROOM=true)")
	fs.IntVar(&cfg.MetricsPerRoomMax, "metrics-per-room-max", envIntDefault("metrics-per-room-max", 100), "with -metrics-per-room, at most this many `rooms` get series of their own; the others count in handsup_metrics_rooms_omitted (env HANDSUP_METRICS_PER_ROOM_MAX)")
	fs.BoolVar(&cfg.Pprof, "pprof", env("pprof", "") == "true", "serve /debug/pprof on the HTTP address, to the admin token only (env HANDSUP_PPROF=true)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: handsup [flags]\n\nThe handsup audio-room server. Flags (each also read from its environment variable):\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch logFormat {
	case "text":
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stdout, opts))
	case "json":
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stdout, opts))
	default:
		return fmt.Errorf("-log-format must be text or json, not %q", logFormat)
	}
	for old, now := range map[string]string{"HANDSUP_TOKEN": "HANDSUP_ADMIN_TOKEN", "HANDSUP_INVITE_SECRET": "HANDSUP_TOKEN_KEY"} {
		if _, set := os.LookupEnv(old); set {
			return fmt.Errorf("%s is no longer read: set %s", old, now)
		}
	}
	admin, err := secret(*adminTokenFile, "HANDSUP_ADMIN_TOKEN", "-admin-token-file")
	if err != nil {
		return err
	}
	cfg.AdminToken = string(admin)
	key, err := secret(*tokenKeyFile, "HANDSUP_TOKEN_KEY", "-token-key-file")
	if err != nil {
		return err
	}
	if cfg.TokenKey, err = decodeKey(key); err != nil {
		return err
	}
	cfg.KickBan = *kickBan
	if *kickBan <= 0 {
		cfg.KickBan = -1
	}

	cfg.NoRTCPPort = !*rtcpPort
	d, err := time.ParseDuration(*idle)
	if err != nil {
		return fmt.Errorf("-idle-timeout: %w", err)
	}
	cfg.IdleTimeout = d
	if d <= 0 {
		cfg.IdleTimeout = -1
	}
	if publicIPs != "" {
		cfg.WebRTC.PublicIPs = strings.Split(publicIPs, ",")
	}
	cfg.ICEServers.URLs = append(stunURLs.list, turnURLs.list...)
	cfg.ICEServers.TURNTTL = *turnTTL
	if cfg.ICEServers.TURNSecret, err = secret(*turnSecretFile, "HANDSUP_TURN_SECRET", "-turn-secret-file"); err != nil {
		return err
	}
	if cfg.MaxRooms < 0 || cfg.MaxParticipants < 0 || cfg.MaxRoomParticipants < 0 || cfg.MaxSpeakers < 0 ||
		cfg.JoinRate < 0 || cfg.JoinBurst < 0 || cfg.MaxTickLoad < 0 || cfg.MaxEventStreams < 0 || cfg.MaxRoomEventStreams < 0 {
		return errors.New("-max-rooms, -max-participants, -max-room-participants, -max-speakers, -join-rate, -join-burst, -max-tick-load, -max-event-streams and -max-room-event-streams must not be negative")
	}
	if cfg.MetricsPerRoomMax < 1 {
		return errors.New("-metrics-per-room-max must be at least 1")
	}
	if *workers < 0 {
		return errors.New("-workers must not be negative")
	}
	if cfg.Phases < 0 || cfg.Phases > engine.MaxPhases {
		return fmt.Errorf("-phases must be 0 to %d", engine.MaxPhases)
	}
	if cfg.ShedComplexity < -1 || cfg.ShedComplexity > 10 {
		return errors.New("-shed-complexity must be -1 to 10")
	}
	cfg.Workers = procs.SpareProcessor(*workers)
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	if cfg.DemoRoom != "" {
		printDemoHelp(stderr, srv.HTTPAddr().String(), srv.RTPAddr().String(), cfg.DemoRoom, cfg.AdminToken != "")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return srv.Run(ctx)
}

// envName is the environment variable of a flag: -public-rtp is
// HANDSUP_PUBLIC_RTP.
func envName(flagName string) string {
	return "HANDSUP_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// envDuration is a flag's duration from its environment variable, or def.
func envDuration(flagName string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(env(flagName, "")); err == nil {
		return d
	}
	return def
}

// listFlag is a repeatable flag whose values may also be comma-separated;
// the first use on the command line replaces the environment's list.
type listFlag struct {
	list []string
	set  bool
}

func (l *listFlag) String() string { return strings.Join(l.list, ",") }

func (l *listFlag) Set(v string) error {
	if !l.set {
		l.list, l.set = nil, true
	}
	l.list = append(l.list, splitList(v)...)
	return nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// secret is a secret from file when set, else from the environment
// variable envVar: never from the command line, where ps and pprof's
// /cmdline show it.
func secret(file, envVar, flagName string) ([]byte, error) {
	if file == "" {
		return []byte(os.Getenv(envVar)), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flagName, err)
	}
	b = []byte(strings.TrimSpace(string(b)))
	if len(b) == 0 {
		return nil, fmt.Errorf("%s %s is empty", flagName, file)
	}
	return b, nil
}

// decodeKey reads the participant-token key: hex, else base64 (standard
// or URL alphabet, padded or not); empty is no key (random per start).
func decodeKey(s []byte) ([]byte, error) {
	if len(s) == 0 {
		return nil, nil
	}
	text := string(s)
	key, err := hex.DecodeString(text)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if err == nil {
			break
		}
		key, err = enc.DecodeString(text)
	}
	if err != nil {
		return nil, errors.New("the participant-token key must be hex or base64")
	}
	if len(key) < access.MinKeyBytes {
		return nil, fmt.Errorf("the participant-token key is %d bytes: it must have at least %d", len(key), access.MinKeyBytes)
	}
	return key, nil
}

func envInt(flagName string) int { return envIntDefault(flagName, 0) }

// envIntDefault is a flag's integer from its environment variable, or def.
func envIntDefault(flagName string, def int) int {
	n, err := strconv.Atoi(env(flagName, strconv.Itoa(def)))
	if err != nil {
		return def
	}
	return n
}

func envFloat(flagName string) float64 {
	f, _ := strconv.ParseFloat(env(flagName, "0"), 64)
	return f
}

func env(flagName, def string) string {
	if v, ok := os.LookupEnv(envName(flagName)); ok {
		return v
	}
	return def
}

// printDemoHelp tells how to speak and listen in the demo room with ffmpeg.
func printDemoHelp(w io.Writer, httpAddr, rtpAddr, room string, auth bool) {
	hdr := ""
	if auth {
		hdr = ` -H "Authorization: Bearer $HANDSUP_ADMIN_TOKEN"`
	}
	fmt.Fprintf(w, `
Room %[3]q is open. In another terminal:

  # speak: declare the port you send from, then send a tone (or -f pulse -i default for a microphone)
  curl -s%[4]s -X POST http://%[1]s/v1/rooms/%[3]s/participants \
    -d '{"id":"alice","role":"speaker","rtp":{"addr":"127.0.0.1:6000","recv_addr":"127.0.0.1:6002"}}'
  ffmpeg -re -f lavfi -i sine=frequency=440:sample_rate=48000 -ac 1 -c:a libopus -b:a 32k \
    -frame_duration 20 -payload_type 111 -f rtp "rtp://%[2]s?localrtpport=6000&localrtcpport=6001"

  # listen: declare where you receive, then play the stream described by an SDP file
  curl -s%[4]s -X POST http://%[1]s/v1/rooms/%[3]s/participants \
    -d '{"id":"bob","role":"listener","rtp":{"addr":"127.0.0.1:7000"}}'
  printf 'v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=handsup\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n' > bob.sdp
  ffplay -nodisp -protocol_whitelist file,udp,rtp -i bob.sdp

  # watch: room state, events and metrics
  curl -s%[4]s http://%[1]s/v1/rooms/%[3]s
  curl -sN%[4]s http://%[1]s/v1/rooms/%[3]s/events
  curl -s http://%[1]s/metrics | grep ^handsup_

`, httpAddr, rtpAddr, room, hdr)
}
