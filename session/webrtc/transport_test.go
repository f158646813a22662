package webrtc_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/internal/webrtctest"
	"github.com/handsup-audio/handsup/session/webrtc"
)

// deadline bounds a failure; it never decides a pass.
const deadline = 20 * time.Second

func listen(t testing.TB, cfg webrtc.Config) *webrtc.Transport {
	t.Helper()
	if cfg.UDPAddr == "" {
		cfg.UDPAddr = "127.0.0.1:0"
	}
	cfg.LoggerFactory = webrtctest.Quiet
	tr, err := webrtc.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// connect runs one offer/answer between a new client and tr.
func connect(t testing.TB, tr *webrtc.Transport, o webrtctest.Options) (*webrtctest.Client, *webrtc.Peer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	c, err := webrtctest.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	offer, err := c.Offer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p, answer, err := tr.Answer(ctx, offer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	if err := c.Accept(answer); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return c, p
}

// recorder is a session.Receiver that keeps copies.
type recorder struct {
	mu          sync.Mutex
	rtp, rtcp   int
	gotRTP      chan struct{}
	gotRTCP     chan struct{}
	once, once2 sync.Once
}

func newRecorder() *recorder {
	return &recorder{gotRTP: make(chan struct{}), gotRTCP: make(chan struct{})}
}

func (r *recorder) ReceiveRTP(pkt []byte) {
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		panic("not RTP")
	}
	r.mu.Lock()
	r.rtp++
	r.mu.Unlock()
	r.once.Do(func() { close(r.gotRTP) })
}

func (r *recorder) ReceiveRTCP(pkt []byte) {
	r.mu.Lock()
	r.rtcp++
	r.mu.Unlock()
	r.once2.Do(func() { close(r.gotRTCP) })
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(deadline):
		t.Fatalf("no %s within %v", what, deadline)
	}
}

// engineHeader writes the 12-byte header the engine would.
func engineHeader(h []byte, pt uint8, seq uint16, ts, ssrc uint32) []byte {
	h[0], h[1] = 0x80, pt
	binary.BigEndian.PutUint16(h[2:], seq)
	binary.BigEndian.PutUint32(h[4:], ts)
	binary.BigEndian.PutUint32(h[8:], ssrc)
	return h[:12]
}

// sendTone sends frames of a tone through the peer as the engine would.
func sendTone(t *testing.T, p *webrtc.Peer, freq float64, frames int) {
	enc, err := codec.NewEncoder(codec.EncoderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var pcm [codec.FrameSamples]int16
	var payload [1500]byte
	var hdr [12]byte
	next := time.Now()
	for i := range frames {
		signal.Tone(pcm[:], freq, 8000, i*codec.FrameSamples)
		n, err := enc.Encode(pcm[:], payload[:])
		if err != nil {
			t.Fatal(err)
		}
		h := engineHeader(hdr[:], p.PayloadType(), uint16(1000+i), uint32(i*codec.FrameSamples), p.SSRC())
		if err := p.WriteRTP(h, payload[:n]); err != nil {
			t.Fatal(err)
		}
		p.Flush() // as the room's AfterTick does
		next = next.Add(20 * time.Millisecond)
		time.Sleep(time.Until(next))
	}
}

func TestMediaBothWays(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		name := "udp"
		if tcp {
			name = "tcp"
		}
		t.Run(name, func(t *testing.T) {
			cfg := webrtc.Config{}
			if tcp {
				cfg.TCPAddr = "127.0.0.1:0"
			}
			tr := listen(t, cfg)
			// The TCP client offers RED too, as Chrome does.
			c, p := connect(t, tr, webrtctest.Options{Send: true, TCP: tcp, RED: tcp})
			wantRED := map[bool]uint8{false: 0, true: webrtc.REDPayloadType}[tcp]
			if p.PayloadType() != webrtc.OpusPayloadType || p.REDPayloadType() != wantRED || p.SSRC() == 0 {
				t.Errorf("negotiated pt %d, RED pt %d, ssrc %d", p.PayloadType(), p.REDPayloadType(), p.SSRC())
			}
			rec := newRecorder()
			p.Bind(rec)
			p.Prefetch(2) // hints, before and after the fast path starts: they change nothing
			p.Prefetch(1)
			// The fast path starts on the server's own connected event,
			// which may come a moment after the client's.
			for end := time.Now().Add(deadline); !tcp && !p.FastPath() && time.Now().Before(end); {
				time.Sleep(10 * time.Millisecond)
			}

			// Out: the engine's header and payload reach the client, who
			// decodes the tone.
			mark := c.Mark()
			sendTone(t, p, 440, 50)
			if got := c.SSRCs()[p.SSRC()]; got == 0 {
				t.Fatalf("client got no packet on SSRC %d: %v", p.SSRC(), c.SSRCs())
			}
			if lvl := c.LevelSince(mark, 440); lvl < -30 {
				t.Errorf("client hears the tone at %.1f dB", lvl)
			}
			// In: the client's RTP and RTCP (its sender reports, sent
			// about every second) reach the bound receiver raw.
			go func() { _ = c.Talk(440, 100) }()
			wait(t, rec.gotRTP, "RTP from the client")
			wait(t, rec.gotRTCP, "RTCP from the client")
			st := tr.Stats()
			if st.RTPSent == 0 || st.RTPIn == 0 || st.RTCPIn == 0 || st.Open != 1 || st.SlowPeers != 0 {
				t.Errorf("stats %+v", st)
			}
			p.Prefetch(2)
			p.Prefetch(1)
			// Over UDP the peer's own SRTP context protected every packet
			// the client decoded (pion's would have used the same keys);
			// over ICE-TCP pion's path carried them.
			if wantFast := map[bool]uint64{false: st.RTPSent, true: 0}[tcp]; st.FastRTP != wantFast {
				t.Errorf("%d of %d packets on the fast path, want %d", st.FastRTP, st.RTPSent, wantFast)
			}
		})
	}
}

func TestBadOffers(t *testing.T) {
	tr := listen(t, webrtc.Config{})
	ctx := context.Background()
	for _, offer := range []string{"", "v=0\r\ngarbage", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"} {
		if _, _, err := tr.Answer(ctx, offer); !errors.Is(err, webrtc.ErrBadOffer) {
			t.Errorf("offer %q: %v, want ErrBadOffer", offer, err)
		}
	}
	if st := tr.Stats(); st.OffersRefused != 3 || st.Open != 0 {
		t.Errorf("stats %+v", st)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(webrtc.NewCollector(tr))
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP handsup_webrtc_offers_refused_total SDP offers refused: unparsable, no single audio section, no Opus.
# TYPE handsup_webrtc_offers_refused_total counter
handsup_webrtc_offers_refused_total 3
# HELP handsup_webrtc_peers WebRTC peers open.
# TYPE handsup_webrtc_peers gauge
handsup_webrtc_peers 0
`), "handsup_webrtc_offers_refused_total", "handsup_webrtc_peers"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 15 {
		t.Errorf("%d series (%v), want 15", n, err)
	}
}

func TestConsentLossFails(t *testing.T) {
	failed := make(chan *webrtc.Peer, 1)
	tr := listen(t, webrtc.Config{
		DisconnectedTimeout: 500 * time.Millisecond, FailedTimeout: 500 * time.Millisecond,
		KeepAlive: 100 * time.Millisecond,
		OnFailed:  func(p *webrtc.Peer) { failed <- p },
	})
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sw := &webrtctest.Switch{PacketConn: conn}
	_, p := connect(t, tr, webrtctest.Options{Conn: sw})
	sw.Off()
	select {
	case got := <-failed:
		if got != p {
			t.Errorf("OnFailed for another peer")
		}
	case <-time.After(deadline):
		t.Fatalf("no failure within %v (state %v)", deadline, p.ConnectionState())
	}
	if st := tr.Stats(); st.PeersFailed != 1 {
		t.Errorf("stats %+v", st)
	}
}

// BenchmarkWriteRTP is one listener's send as a room of 100 listeners
// sends it: the engine's header parsed, SRTP protection of the shared
// payload and a copy into the transport's batch, then, once per 100
// packets, the batch's sendmmsg. queue-ns/op is the first part alone,
// send-ns/op the second (the kernel's). The client's socket closes once
// connected, so the kernel drops what arrives and the figures (allocations
// are counted process-wide) are the sender's alone.
func BenchmarkWriteRTP(b *testing.B) {
	const listeners = 100
	tr := listen(b, webrtc.Config{})
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	_, p := connect(b, tr, webrtctest.Options{Conn: conn})
	_ = conn.Close()
	payload := make([]byte, 80)
	var hdr [12]byte
	var sending time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		h := engineHeader(hdr[:], p.PayloadType(), uint16(i), uint32(i*960), p.SSRC())
		if err := p.WriteRTP(h, payload); err != nil {
			b.Fatal(err)
		}
		if i%listeners == listeners-1 {
			t0 := time.Now()
			tr.Flush()
			sending += time.Since(t0)
		}
	}
	total := b.Elapsed()
	b.ReportMetric(float64((total-sending).Nanoseconds())/float64(b.N), "queue-ns/op")
	b.ReportMetric(float64(sending.Nanoseconds())/float64(b.N), "send-ns/op")
	if st := tr.Stats(); st.SendSyscalls == 0 || st.BatchedOut < st.SendSyscalls {
		b.Errorf("batched %d datagrams in %d sendmmsg calls", st.BatchedOut, st.SendSyscalls)
	}
}

// BenchmarkSRTPProtect is the per-listener crypto alone: one SRTP
// protection of an 80-byte payload (a 32 kbps Opus frame) under each
// profile pion offers, into a reused buffer, the socket left out.
func BenchmarkSRTPProtect(b *testing.B) {
	for _, prof := range []srtp.ProtectionProfile{srtp.ProtectionProfileAes128CmHmacSha1_80, srtp.ProtectionProfileAeadAes128Gcm} {
		b.Run(prof.String(), func(b *testing.B) {
			keyLen, _ := prof.KeyLen()
			saltLen, _ := prof.SaltLen()
			ctx, err := srtp.CreateContext(make([]byte, keyLen), make([]byte, saltLen), prof)
			if err != nil {
				b.Fatal(err)
			}
			var hdr [12]byte
			pkt := append(engineHeader(hdr[:], 111, 1, 0, 42), make([]byte, 80)...)
			var h rtp.Header
			dst := make([]byte, 0, 1500)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				engineHeader(pkt, 111, uint16(i), uint32(i*960), 42)
				if _, err := h.Unmarshal(pkt); err != nil {
					b.Fatal(err)
				}
				if dst, err = ctx.EncryptRTP(dst[:0], pkt, &h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWriteRTPPeers is a room's send to 200 WebRTC listeners, each a
// pion client over loopback: one packet to each peer in turn, as a tick
// does, the batch flushed after each round. Between rounds 32 MB are
// written, as 20 ms of other work would, so each peer's state comes from
// memory as it does on a busy server. queue-ns/op is one listener's
// share before the flush, send-ns/op the flush's (the kernel's).
func BenchmarkWriteRTPPeers(b *testing.B) {
	const peers = 200
	tr := listen(b, webrtc.Config{})
	ps := make([]*webrtc.Peer, peers)
	for i := range ps {
		_, ps[i] = connect(b, tr, webrtctest.Options{CountOnly: true})
	}
	for end := time.Now().Add(deadline); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		fast := 0
		for _, p := range ps {
			if p.FastPath() {
				fast++
			}
		}
		if fast == peers {
			break
		}
	}
	payload := make([]byte, 80)
	var hdr [12]byte
	evict := make([]byte, 32<<20)
	var queueing, sending time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for round := 0; n < b.N; round++ {
		b.StopTimer()
		for i := 0; i < len(evict); i += 64 {
			evict[i]++
		}
		b.StartTimer()
		t0 := time.Now()
		for i, p := range ps { // prefetching as the engine does (engine.Prefetcher)
			if i+2 < len(ps) {
				ps[i+2].Prefetch(2)
			}
			if i+1 < len(ps) {
				ps[i+1].Prefetch(1)
			}
			h := engineHeader(hdr[:], p.PayloadType(), uint16(round), uint32(round*960), p.SSRC())
			if err := p.WriteRTP(h, payload); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		tr.Flush()
		queueing += t1.Sub(t0)
		sending += time.Since(t1)
		n += peers
	}
	b.ReportMetric(float64(queueing.Nanoseconds())/float64(n), "queue-ns/op")
	b.ReportMetric(float64(sending.Nanoseconds())/float64(n), "send-ns/op")
	if st := tr.Stats(); st.FastRTP != st.RTPSent {
		b.Errorf("%d of %d packets on the fast path", st.FastRTP, st.RTPSent)
	}
}

// A closed peer sends nothing more: the engine's packets after Close are
// dropped and counted, not protected and queued.
func TestClosedPeerSendsNothing(t *testing.T) {
	tr := listen(t, webrtc.Config{})
	_, p := connect(t, tr, webrtctest.Options{CountOnly: true})
	for end := time.Now().Add(deadline); !p.FastPath() && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	if !p.FastPath() {
		t.Fatal("the fast path never started")
	}
	_ = p.Close()
	if p.FastPath() {
		t.Fatal("the fast path outlived Close")
	}
	before := tr.Stats()
	var hdr [12]byte
	for i := range 10 {
		_ = p.WriteRTP(engineHeader(hdr[:], p.PayloadType(), uint16(i), uint32(i*960), p.SSRC()), make([]byte, 80))
	}
	if st := tr.Stats(); st.FastRTP != before.FastRTP || st.RTPSent != before.RTPSent {
		t.Fatalf("after Close %d packets were sent (%d on the fast path)", st.RTPSent-before.RTPSent, st.FastRTP-before.FastRTP)
	}
}
