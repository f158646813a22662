package codec

import (
	"errors"
	"fmt"

	"github.com/hraban/opus"
)

const (
	// SampleRate is the rate of every PCM buffer in handsup.
	SampleRate = 48000
	// FrameSamples is one 20 ms tick of mono PCM at 48 kHz.
	FrameSamples = 960
	// MaxFrameSamples is the longest Opus packet, 120 ms, in samples.
	MaxFrameSamples = maxPacketSamples
	// MaxPacketBytes bounds an encoded packet; RFC 6716 allows 1275 bytes per frame.
	MaxPacketBytes = 1500
)

// Bandwidth is an Opus audio bandwidth.
type Bandwidth int

// Opus bandwidths, narrowest first.
const (
	Narrowband    = Bandwidth(opus.Narrowband)
	Mediumband    = Bandwidth(opus.Mediumband)
	Wideband      = Bandwidth(opus.Wideband)
	SuperWideband = Bandwidth(opus.SuperWideband)
	Fullband      = Bandwidth(opus.Fullband)
)

func (b Bandwidth) String() string {
	switch b {
	case Narrowband:
		return "narrowband"
	case Mediumband:
		return "mediumband"
	case Wideband:
		return "wideband"
	case SuperWideband:
		return "superwideband"
	case Fullband:
		return "fullband"
	}
	return fmt.Sprintf("bandwidth(%d)", int(b))
}

// ErrFrameSize reports a PCM buffer of the wrong length.
var ErrFrameSize = errors.New("codec: pcm buffer must hold 960 samples")

// EncoderConfig holds an encoder's settings. The zero value is valid:
// every zero field takes the default written beside it.
type EncoderConfig struct {
	Bitrate           int       // bits per second; default 32000
	Complexity        int       // 0..10; default 5 (0 is treated as the default; use SetComplexity(0) for 0)
	FEC               bool      // in-band forward error correction; default off
	PacketLossPercent int       // expected loss, 0..100, steers FEC; default 0
	DTX               bool      // discontinuous transmission; default off
	MaxBandwidth      Bandwidth // default Fullband
}

func (c EncoderConfig) withDefaults() EncoderConfig {
	if c.Bitrate == 0 {
		c.Bitrate = 32000
	}
	if c.Complexity == 0 {
		c.Complexity = 5
	}
	if c.MaxBandwidth == 0 {
		c.MaxBandwidth = Fullband
	}
	return c
}

// Encoder encodes 20 ms frames of 48 kHz mono PCM to Opus.
type Encoder struct {
	enc *opus.Encoder
	cfg EncoderConfig
}

// NewEncoder makes a VoIP-tuned Opus encoder with cfg's settings.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	enc, err := opus.NewEncoder(SampleRate, 1, opus.AppVoIP)
	if err != nil {
		return nil, fmt.Errorf("codec: new encoder: %w", err)
	}
	e := &Encoder{enc: enc}
	if err := e.Apply(cfg); err != nil {
		return nil, err
	}
	return e, nil
}

// Apply changes every setting at once; the encoder keeps its state.
func (e *Encoder) Apply(cfg EncoderConfig) error {
	cfg = cfg.withDefaults()
	for _, step := range []func() error{
		func() error { return e.SetBitrate(cfg.Bitrate) },
		func() error { return e.SetComplexity(cfg.Complexity) },
		func() error { return e.SetFEC(cfg.FEC) },
		func() error { return e.SetPacketLossPercent(cfg.PacketLossPercent) },
		func() error { return e.SetDTX(cfg.DTX) },
		func() error { return e.SetMaxBandwidth(cfg.MaxBandwidth) },
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// Config returns the encoder's current settings.
func (e *Encoder) Config() EncoderConfig { return e.cfg }

// SetBitrate sets the target bitrate in bits per second.
func (e *Encoder) SetBitrate(bps int) error {
	if err := e.enc.SetBitrate(bps); err != nil {
		return fmt.Errorf("codec: bitrate %d: %w", bps, err)
	}
	e.cfg.Bitrate = bps
	return nil
}

// SetComplexity sets the encoder's computational complexity, 0 to 10.
func (e *Encoder) SetComplexity(c int) error {
	if err := e.enc.SetComplexity(c); err != nil {
		return fmt.Errorf("codec: complexity %d: %w", c, err)
	}
	e.cfg.Complexity = c
	return nil
}

// SetFEC turns in-band forward error correction on or off. It engages only
// with a loss hint (SetPacketLossPercent) and enough bitrate for SILK.
func (e *Encoder) SetFEC(on bool) error {
	if err := e.enc.SetInBandFEC(on); err != nil {
		return fmt.Errorf("codec: fec: %w", err)
	}
	e.cfg.FEC = on
	return nil
}

// SetPacketLossPercent tells the encoder the loss it should expect.
func (e *Encoder) SetPacketLossPercent(p int) error {
	if err := e.enc.SetPacketLossPerc(p); err != nil {
		return fmt.Errorf("codec: packet loss %d%%: %w", p, err)
	}
	e.cfg.PacketLossPercent = p
	return nil
}

// SetDTX turns discontinuous transmission on or off. With DTX, Encode returns
// packets of at most 2 bytes during silence, which a sender need not send.
func (e *Encoder) SetDTX(on bool) error {
	if err := e.enc.SetDTX(on); err != nil {
		return fmt.Errorf("codec: dtx: %w", err)
	}
	e.cfg.DTX = on
	return nil
}

// SetMaxBandwidth caps the audio bandwidth the encoder may choose.
func (e *Encoder) SetMaxBandwidth(bw Bandwidth) error {
	if err := e.enc.SetMaxBandwidth(opus.Bandwidth(bw)); err != nil {
		return fmt.Errorf("codec: max bandwidth %v: %w", bw, err)
	}
	e.cfg.MaxBandwidth = bw
	return nil
}

// Encode encodes one 20 ms frame (960 samples) into out and returns the
// packet's length. out's capacity bounds the packet; MaxPacketBytes is ample.
func (e *Encoder) Encode(pcm []int16, out []byte) (int, error) {
	if len(pcm) != FrameSamples {
		return 0, ErrFrameSize
	}
	n, err := e.enc.Encode(pcm, out[:cap(out)])
	if err != nil {
		return 0, fmt.Errorf("codec: encode: %w", err)
	}
	return n, nil
}

// IsDTX reports whether an encoded packet is a DTX frame: a packet of at most
// two bytes that carries no audio and that RTP senders leave out.
func IsDTX(packet []byte) bool { return len(packet) <= 2 }

// Decoder decodes Opus packets to 48 kHz mono PCM.
type Decoder struct {
	dec *opus.Decoder
}

// NewDecoder makes a mono decoder; stereo packets are mixed down by libopus.
func NewDecoder() (*Decoder, error) {
	dec, err := opus.NewDecoder(SampleRate, 1)
	if err != nil {
		return nil, fmt.Errorf("codec: new decoder: %w", err)
	}
	return &Decoder{dec: dec}, nil
}

// Decode decodes a packet of any Opus duration (2.5 to 120 ms) into pcm and
// returns the number of samples written. pcm must hold the packet's duration;
// MaxFrameSamples always suffices. A corrupt packet returns an error and
// leaves pcm undefined: the caller conceals instead.
func (d *Decoder) Decode(packet []byte, pcm []int16) (int, error) {
	if len(packet) == 0 {
		return 0, fmt.Errorf("%w: empty", ErrMalformedPacket)
	}
	n, err := d.dec.Decode(packet, pcm[:len(pcm):len(pcm)])
	if err != nil {
		return 0, fmt.Errorf("codec: decode: %w", err)
	}
	return n, nil
}

// DecodeFEC recovers the frame lost just before next from next's in-band
// FEC data, writing exactly len(pcm) samples (normally 960). Where next
// carries no FEC, libopus conceals instead.
func (d *Decoder) DecodeFEC(next []byte, pcm []int16) error {
	if len(next) == 0 {
		return fmt.Errorf("%w: empty", ErrMalformedPacket)
	}
	if err := d.dec.DecodeFEC(next, pcm[:len(pcm):len(pcm)]); err != nil {
		return fmt.Errorf("codec: decode fec: %w", err)
	}
	return nil
}

// Conceal writes len(pcm) samples of packet-loss concealment (normally 960,
// exactly 20 ms: libopus conceals as much as the buffer's capacity says, so
// the capacity is clipped here).
func (d *Decoder) Conceal(pcm []int16) error {
	if err := d.dec.DecodePLC(pcm[:len(pcm):len(pcm)]); err != nil {
		return fmt.Errorf("codec: conceal: %w", err)
	}
	return nil
}

// Reset forgets the decoder's state, for a new stream (an SSRC change).
// It allocates a fresh libopus decoder: resets are rare.
func (d *Decoder) Reset() error {
	dec, err := opus.NewDecoder(SampleRate, 1)
	if err != nil {
		return fmt.Errorf("codec: reset decoder: %w", err)
	}
	d.dec = dec
	return nil
}

// Reset forgets the encoder's state but keeps its settings, so a pooled
// encoder starts a new stream clean.
func (e *Encoder) Reset() error {
	if err := e.enc.Reset(); err != nil {
		return fmt.Errorf("codec: reset encoder: %w", err)
	}
	return nil
}

// ConcealFade is how much of its level concealment keeps per 20 ms frame
// once a loss has lasted too long (jitter's Frame.Fading): silence within
// about 100 ms, rather than a robotic buzz.
const ConcealFade = 0.5

// FadeConcealed fades a concealed frame: its gain ramps linearly across
// dst from *gain to *gain·ConcealFade (no step, so no click), and *gain
// keeps the new level, 0 once under 0.05. A player keeps *gain at 1 while
// it plays received audio.
func FadeConcealed(dst []int16, gain *float32) {
	from, to := *gain, *gain*ConcealFade
	if to < 0.05 {
		to = 0
	}
	step := (to - from) / float32(len(dst))
	g := from
	for i, v := range dst {
		g += step
		dst[i] = int16(float32(v) * g)
	}
	*gain = to
}
