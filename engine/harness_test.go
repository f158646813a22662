package engine_test

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/engine"
	"github.com/handsup-audio/handsup/internal/fakeclock"
)

// client is a participant as a real client sees it: it encodes a tone with
// libopus and sends RTP, and decodes every packet it receives.
type client struct {
	t    *testing.T
	p    *engine.Participant
	freq float64 // the tone it speaks; 0 sends nothing
	amp  float64 // 0..1 of full scale

	enc     *codec.Encoder
	pcm     [codec.FrameSamples]int16
	packet  [1500]byte
	seq     uint16
	ts      uint32
	sent    int // frames of tone generated
	silence bool

	mu          sync.Mutex
	dec         *codec.Decoder
	heard       []int16 // decoded output, one 20 ms frame per packet
	headers     []rtp.Header
	frame       [codec.MaxFrameSamples]int16
	lastPayload []byte
	failSink    bool
}

// room is a test room on a hand-stepped clock.
type room struct {
	t       *testing.T
	clock   *fakeclock.Clock
	eng     *engine.Engine
	room    *engine.Room
	clients map[string]*client
	order   []*client
}

func newTestRoom(t *testing.T, cfg engine.RoomConfig) *room {
	t.Helper()
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	eng := engine.New(engine.Config{Now: clock.Now, Workers: 2})
	t.Cleanup(eng.Close)
	r, err := eng.NewRoom("test", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &room{t: t, clock: clock, eng: eng, room: r, clients: map[string]*client{}}
}

// join adds a client speaking freq (0: silent) at amplitude amp.
func (r *room) join(id string, role engine.Role, freq, amp float64) *client {
	r.t.Helper()
	dec, err := codec.NewDecoder()
	if err != nil {
		r.t.Fatal(err)
	}
	c := &client{t: r.t, freq: freq, amp: amp, dec: dec, seq: 1000, ts: 5000}
	if freq > 0 {
		if c.enc, err = codec.NewEncoder(codec.EncoderConfig{Bitrate: 64000}); err != nil {
			r.t.Fatal(err)
		}
	}
	p, err := r.room.Join(id, engine.ParticipantConfig{Role: role, Sink: engine.SinkFunc(c.receive)})
	if err != nil {
		r.t.Fatal(err)
	}
	c.p = p
	r.clients[id] = c
	r.order = append(r.order, c)
	return c
}

var errSink = &sinkError{}

type sinkError struct{}

func (*sinkError) Error() string { return "sink refused" }

// receive is the client's sink: it checks and decodes each packet.
func (c *client) receive(header, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failSink {
		return errSink
	}
	var h rtp.Header
	if _, err := h.Unmarshal(header); err != nil {
		c.t.Errorf("%s: bad RTP header from the engine: %v", c.p.ID(), err)
		return nil
	}
	c.headers = append(c.headers, h)
	c.lastPayload = append(c.lastPayload[:0], payload...)
	n, err := c.dec.Decode(payload, c.frame[:])
	if err != nil {
		c.t.Errorf("%s: output does not decode: %v", c.p.ID(), err)
		return nil
	}
	c.heard = append(c.heard, c.frame[:n]...)
	return nil
}

// speak sends the client's next 20 ms of tone.
func (c *client) speak() {
	if c.freq == 0 {
		return
	}
	if c.silence {
		clear(c.pcm[:])
	} else {
		signal.Tone(c.pcm[:], c.freq, c.amp*32767, c.sent*codec.FrameSamples)
	}
	c.sent++
	n, err := c.enc.Encode(c.pcm[:], c.packet[12:])
	if err != nil {
		c.t.Fatal(err)
	}
	pkt := c.rtp(c.packet[12 : 12+n])
	_ = c.p.WriteRTP(pkt)
}

// rtp frames payload as the client's next RTP packet.
func (c *client) rtp(payload []byte) []byte {
	h := rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: c.seq, Timestamp: c.ts, SSRC: 0xC0FFEE}
	c.seq++
	c.ts += codec.FrameSamples
	buf, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
	if err != nil {
		c.t.Fatal(err)
	}
	return buf
}

// run sends and ticks n times, 20 ms of fake time apart.
func (r *room) run(n int) {
	for range n {
		for _, c := range r.order {
			c.speak()
		}
		r.clock.Advance(engine.TickInterval)
		r.eng.Tick()
	}
}

// mark returns how many samples the client has heard so far; with since,
// it slices what came after.
func (c *client) mark() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.heard)
}

func (c *client) since(mark int) []int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int16(nil), c.heard[mark:]...)
}

// hears reports the level in dB (full-scale sine = 0) of freq in what the
// client heard after mark.
func (c *client) level(mark int, freq float64) float64 {
	return signal.ToneDB(c.since(mark), freq)
}

// Tone levels: a tone at amplitude 0.25 is about -12 dB; "absent" means
// below -45 dB (Opus leaks a little between tones; quantisation noise sits
// near -60 dB).
const (
	presentDB = -20
	absentDB  = -40
)

func (r *room) expectHears(c *client, mark int, freqs ...float64) {
	r.t.Helper()
	for _, f := range freqs {
		db := c.level(mark, f)
		r.t.Logf("%s hears %.0f Hz at %.1f dB", c.p.ID(), f, db)
		if db < presentDB {
			r.t.Errorf("%s should hear %.0f Hz: %.1f dB", c.p.ID(), f, db)
		}
	}
}

func (r *room) expectNotHears(c *client, mark int, freqs ...float64) {
	r.t.Helper()
	for _, f := range freqs {
		db := c.level(mark, f)
		r.t.Logf("%s hears %.0f Hz at %.1f dB", c.p.ID(), f, db)
		if db > absentDB {
			r.t.Errorf("%s should not hear %.0f Hz: %.1f dB", c.p.ID(), f, db)
		}
	}
}

// expectContinuous checks that the client's output stream never broke:
// one SSRC, sequence numbers +1 per packet, timestamps +960 per tick, or
// a whole number of ticks more after a DTX gap, which the marker bit
// flags (RFC 7587).
func (c *client) expectContinuous() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := 1; i < len(c.headers); i++ {
		a, b := c.headers[i-1], c.headers[i]
		if b.SSRC != a.SSRC {
			c.t.Fatalf("%s: SSRC changed at packet %d", c.p.ID(), i)
		}
		if b.SequenceNumber != a.SequenceNumber+1 {
			c.t.Fatalf("%s: sequence jumped %d -> %d at packet %d", c.p.ID(), a.SequenceNumber, b.SequenceNumber, i)
		}
		d := b.Timestamp - a.Timestamp
		if d != codec.FrameSamples && (!b.Marker || d%codec.FrameSamples != 0 || d > 1000*codec.FrameSamples) {
			c.t.Fatalf("%s: timestamp jumped %d -> %d at packet %d", c.p.ID(), a.Timestamp, b.Timestamp, i)
		}
	}
}
