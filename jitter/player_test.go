package jitter_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/hraban/opus"
	"github.com/pion/rtp"

	"github.com/handsup-audio/handsup/bench/signal"
	"github.com/handsup-audio/handsup/codec"
	"github.com/handsup-audio/handsup/jitter"
)

// toneFrames is n samples of a 440 Hz tone at amplitude 8000 (RMS ≈ 5657),
// from sample start on.
func toneFrames(n, start int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*440*float64(start+i)/codec.SampleRate))
	}
	return pcm
}

func rmsOf(pcm []int16) float64 {
	var sum float64
	for _, v := range pcm {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(pcm)))
}

// pulses is n samples of a 300 Hz pulse train, a voice's buzz (RMS ≈ 2121),
// from sample start on: the decoder's concealment of it keeps buzzing.
func pulses(n, start int) []int16 {
	pcm := make([]int16, n)
	for i := range pcm {
		if (start+i)%160 < 5 {
			pcm[i] = 12000
		}
	}
	return pcm
}

// encodeTone encodes n 20 ms frames of the tone with cfg.
func encodeTone(t testing.TB, cfg codec.EncoderConfig, n int) [][]byte {
	return encode(t, cfg, n, toneFrames)
}

// encode encodes n 20 ms frames of a signal with cfg.
func encode(t testing.TB, cfg codec.EncoderConfig, n int, signal func(n, start int) []int16) [][]byte {
	t.Helper()
	enc, err := codec.NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, codec.MaxPacketBytes)
	out := make([][]byte, n)
	for i := range out {
		m, err := enc.Encode(signal(frame, i*frame), buf)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = slices.Clone(buf[:m])
	}
	return out
}

func newPlayer(t testing.TB) *jitter.Player {
	t.Helper()
	p, err := jitter.NewPlayer(jitter.PlayerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// newWholeFramePlayer is a player without time-stretching, for tests that
// count what each tick plays.
func newWholeFramePlayer(t testing.TB) *jitter.Player {
	t.Helper()
	p, err := jitter.NewPlayer(jitter.PlayerConfig{NoStretch: true})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// playerTick is what one call of Next played.
type playerTick struct {
	played jitter.Played
	pcm    []int16
}

// runPlayer pushes packet i, if sent(i), at tick i*per (packets back to
// back in RTP time, whatever their duration), calls Next at every tick up
// to ticks, and returns what each tick played.
func runPlayer(t *testing.T, p *jitter.Player, packets [][]byte, per int, sent func(i int) bool, ticks int) []playerTick {
	t.Helper()
	var pkt rtp.Packet
	out := make([]playerTick, ticks)
	ts := uint32(90_000)
	for tick := range ticks {
		if tick%per == 0 {
			if i := tick / per; i < len(packets) {
				n, err := codec.PacketSamples(packets[i])
				if err != nil {
					t.Fatal(err)
				}
				if sent(i) {
					pkt.SSRC, pkt.SequenceNumber, pkt.Timestamp = 7, uint16(100+i), ts
					pkt.Payload = packets[i]
					if r := p.Buffer().Push(&pkt, at(tick)); r != jitter.Accepted {
						t.Fatalf("packet %d: Push = %v", i, r)
					}
				}
				ts += uint32(n)
			}
		}
		pcm := make([]int16, frame)
		out[tick] = playerTick{p.Next(at(tick), pcm), pcm}
	}
	return out
}

func all(int) bool { return true }

// A clean stream plays, after the start delay, exactly what a decoder
// makes of its packets, one packet a tick.
func TestPlayerDecodes(t *testing.T) {
	packets := encodeTone(t, codec.EncoderConfig{}, 30)
	ticks := runPlayer(t, newPlayer(t), packets, 1, all, 30)
	// The 80 ms start delay and the 10 ms reserve a Player keeps above
	// its target (the start waits for 87.5 ms): four ticks of silence.
	const start = 4
	for i, tk := range ticks[:start] {
		if tk.played != (jitter.Played{SilentSamples: frame}) || slices.ContainsFunc(tk.pcm, func(v int16) bool { return v != 0 }) {
			t.Fatalf("tick %d: %+v, want silence before the start delay", i, tk.played)
		}
	}
	ref, _ := codec.NewDecoder()
	want := make([]int16, codec.MaxFrameSamples)
	for i, tk := range ticks[start:] {
		n, err := ref.Decode(packets[i], want)
		if err != nil || n != frame {
			t.Fatal(n, err)
		}
		if tk.played != (jitter.Played{Audible: true, Decoded: 1, DecodedSamples: frame}) {
			t.Fatalf("tick %d: %+v, want one packet decoded", start+i, tk.played)
		}
		if !slices.Equal(tk.pcm, want[:frame]) {
			t.Fatalf("tick %d: the audio is not packet %d's", start+i, i)
		}
	}
	if r := rmsOf(ticks[len(ticks)-1].pcm); r < 4000 || r > 7500 {
		t.Errorf("tone RMS %.0f, want about 5657", r)
	}
}

// A packet lost when the next one carries in-band FEC is rebuilt from it:
// the tick plays what the decoder's FEC makes, the tone, and counts a
// recovery, not a concealment.
func TestPlayerRecoversFromFEC(t *testing.T) {
	packets := encodeTone(t, codec.EncoderConfig{Bitrate: 24000, MaxBandwidth: codec.Wideband, FEC: true, PacketLossPercent: 10}, 40)
	lost := -1
	for i := 20; i < len(packets)-5; i++ {
		if codec.HasFEC(packets[i+1]) {
			lost = i
			break
		}
	}
	if lost < 0 {
		t.Fatal("no packet carries in-band FEC")
	}
	p := newPlayer(t)
	ticks := runPlayer(t, p, packets, 1, func(i int) bool { return i != lost }, 40)

	// A reference decoder fed the same: packets before the loss, then the
	// lost frame from the next packet's FEC.
	ref, _ := codec.NewDecoder()
	pcm := make([]int16, codec.MaxFrameSamples)
	for _, pk := range packets[:lost] {
		if _, err := ref.Decode(pk, pcm); err != nil {
			t.Fatal(err)
		}
	}
	if err := ref.DecodeFEC(packets[lost+1], pcm[:frame]); err != nil {
		t.Fatal(err)
	}
	const start = 4
	tk := ticks[start+lost]
	if tk.played != (jitter.Played{Audible: true, Recovered: 1, RecoveredSamples: frame}) {
		t.Fatalf("the lost packet's tick: %+v, want one FEC recovery", tk.played)
	}
	if !slices.Equal(tk.pcm, pcm[:frame]) {
		t.Error("the recovered frame is not the decoder's FEC of the next packet")
	}
	if r := rmsOf(tk.pcm); r < 3000 || r > 8000 {
		t.Errorf("recovered frame RMS %.0f, want the tone (≈5657)", r)
	}
	if next := ticks[start+lost+1].played; next.Decoded != 1 {
		t.Errorf("the tick after: %+v, want the next packet decoded", next)
	}
	st := p.Buffer().Stats()
	if st.FecPacketsReceived != 1 || st.ConcealedSamples != 0 {
		t.Errorf("stats: %d FEC packets, %d concealed samples; want 1 and 0", st.FecPacketsReceived, st.ConcealedSamples)
	}
}

// A long gap in a stream is concealed: the decoder's PLC for 100 ms, then
// the same fading out over the next 100 ms (no buzz), then silence left
// out of the mix while the gap lasts; the stream plays at full level once
// its packets come back. The buffer holds 300 ms, so it keeps concealing
// through the gap rather than stop and wait.
func TestPlayerConcealsThenFades(t *testing.T) {
	const from, gap, n = 50, 15, 100
	packets := encode(t, codec.EncoderConfig{Bitrate: 24000, MaxBandwidth: codec.Wideband}, n, pulses)
	delay := 300 * time.Millisecond
	// Frame-exact: no time-stretching (the level falls under target in
	// the gap, and stretching would move the frames this test counts).
	p, err := jitter.NewPlayer(jitter.PlayerConfig{Buffer: jitter.Config{MinDelay: delay, StartDelay: delay}, NoStretch: true})
	if err != nil {
		t.Fatal(err)
	}
	ticks := runPlayer(t, p, packets, 1, func(i int) bool { return i < from || i >= from+gap }, n)
	start := slices.IndexFunc(ticks, func(tk playerTick) bool { return tk.played.Decoded > 0 })

	// A reference decoder: the packets before the gap, then its PLC, faded
	// from the sixth frame on.
	ref, _ := codec.NewDecoder()
	want := make([]int16, codec.MaxFrameSamples)
	for _, pk := range packets[:from] {
		if _, err := ref.Decode(pk, want); err != nil {
			t.Fatal(err)
		}
	}
	gain := float32(1)
	for k := range gap {
		tk := ticks[start+from+k]
		if tk.played.Concealed != 1 || tk.played.ConcealedSamples != frame || tk.played.Decoded != 0 {
			t.Fatalf("gap frame %d: %+v, want one frame concealed", k, tk.played)
		}
		if err := ref.Conceal(want[:frame]); err != nil {
			t.Fatal(err)
		}
		plc := rmsOf(want[:frame])
		if k >= 5 {
			codec.FadeConcealed(want[:frame], &gain)
		}
		r := rmsOf(tk.pcm)
		switch {
		case k < 5: // the first 100 ms: the decoder's concealment
			if !tk.played.Audible || !slices.Equal(tk.pcm, want[:frame]) || r < 500 {
				t.Errorf("gap frame %d: audible %v, RMS %.0f; want the decoder's concealment", k, tk.played.Audible, r)
			}
		case k < 10: // fading: halving frame by frame
			if !tk.played.Audible || !slices.Equal(tk.pcm, want[:frame]) || r >= plc*math.Pow(codec.ConcealFade, float64(k-5)) {
				t.Errorf("gap frame %d: audible %v, RMS %.1f, concealment's %.1f; want it fading", k, tk.played.Audible, r, plc)
			}
		default: // faded out: silence, left out of the mix
			if tk.played.Audible || r != 0 {
				t.Errorf("gap frame %d: audible %v, RMS %.0f; want silence", k, tk.played.Audible, r)
			}
		}
	}
	if last := ticks[start+from+9].pcm[frame-1]; last != 0 {
		t.Errorf("the fade ends at %d, want 0", last)
	}
	for k := from + gap + 1; k < from+gap+5; k++ {
		tk := ticks[start+k]
		if !tk.played.Audible || tk.played.Decoded != 1 {
			t.Fatalf("packet %d after the gap: %+v, want it decoded", k, tk.played)
		}
		if r := rmsOf(tk.pcm); r < 1500 || r > 3000 {
			t.Errorf("packet %d after the gap: RMS %.0f, want the pulses at full level (≈2121)", k, r)
		}
	}
}

// A 60 ms packet is decoded once and played over three ticks, all of it:
// the ticks together are what the decoder made of the packets.
func TestPlayerLongPackets(t *testing.T) {
	enc, err := opus.NewEncoder(codec.SampleRate, 1, opus.AppVoIP)
	if err != nil {
		t.Fatal(err)
	}
	const n, long = 12, 3 * frame
	buf := make([]byte, 4000)
	packets := make([][]byte, n)
	for i := range packets {
		m, err := enc.Encode(toneFrames(long, i*long), buf)
		if err != nil {
			t.Fatal(err)
		}
		packets[i] = slices.Clone(buf[:m])
	}
	// Frame-exact: no time-stretching (it would bring the 80 ms start
	// level down by pitch periods, and the ticks would no longer start on
	// packet boundaries).
	ticks := runPlayer(t, newWholeFramePlayer(t), packets, 3, all, 3*n)

	ref, _ := codec.NewDecoder()
	var want, got []int16
	pcm := make([]int16, codec.MaxFrameSamples)
	for _, pk := range packets {
		m, err := ref.Decode(pk, pcm)
		if err != nil || m != long {
			t.Fatal(m, err)
		}
		want = append(want, pcm[:m]...)
	}
	first := slices.IndexFunc(ticks, func(tk playerTick) bool { return tk.played.Decoded > 0 })
	if first < 0 {
		t.Fatal("nothing decoded")
	}
	for i, tk := range ticks[first:] {
		wantDecoded := 0
		if i%3 == 0 {
			wantDecoded = 1
		}
		if tk.played.Decoded != wantDecoded || !tk.played.Audible || tk.played.Concealed != 0 {
			t.Fatalf("tick %d of playout: %+v, want %d decoded, audible", i, tk.played, wantDecoded)
		}
		if wantDecoded == 1 && tk.played.DecodedSamples != long {
			t.Fatalf("tick %d of playout: %d samples decoded, want %d", i, tk.played.DecodedSamples, long)
		}
		got = append(got, tk.pcm...)
	}
	if len(got) > len(want) || !slices.Equal(got, want[:len(got)]) {
		t.Fatal("the ticks do not play the decoded packets in order")
	}
	if len(got) < len(want)-2*long {
		t.Errorf("played %d samples of %d", len(got), len(want))
	}
}

// A sender's DTX pause (a DTX packet, then nothing until speech resumes
// with the next sequence number) plays silence: no concealment, nothing
// audible, until the speech comes back.
func TestPlayerDTX(t *testing.T) {
	enc, err := codec.NewEncoder(codec.EncoderConfig{DTX: true})
	if err != nil {
		t.Fatal(err)
	}
	const speech, pause = 25, 30
	buf := make([]byte, codec.MaxPacketBytes)
	var packets [][]byte
	var sentAt []int // the frame each packet sent starts at
	inDTX := false
	for i := range speech + pause + speech {
		pcm := make([]int16, frame)
		if i < speech || i >= speech+pause {
			pcm = toneFrames(frame, i*frame)
		}
		m, err := enc.Encode(pcm, buf)
		if err != nil {
			t.Fatal(err)
		}
		dtx := codec.IsDTX(buf[:m])
		if dtx && inDTX {
			continue // the sender leaves the rest of the pause out
		}
		inDTX = dtx
		packets, sentAt = append(packets, slices.Clone(buf[:m])), append(sentAt, i)
	}
	dtxAt := slices.IndexFunc(packets, codec.IsDTX)
	if dtxAt < 0 || sentAt[dtxAt] >= speech+pause {
		t.Fatal("the encoder made no DTX packet in the pause")
	}

	p := newWholeFramePlayer(t) // frame-exact, as in TestPlayerLongPackets
	var pkt rtp.Packet
	next := 0
	var played []jitter.Played
	var heard [][]int16
	for tick := range speech + pause + speech {
		if next < len(packets) && sentAt[next] == tick {
			pkt.SSRC, pkt.SequenceNumber, pkt.Timestamp = 7, uint16(next), uint32(tick*frame)
			pkt.Payload = packets[next]
			p.Buffer().Push(&pkt, at(tick))
			next++
		}
		pcm := make([]int16, frame)
		played = append(played, p.Next(at(tick), pcm))
		heard = append(heard, pcm)
	}
	const start = 3 // whole frames: no reserve
	for tick := start + sentAt[dtxAt] + 1; tick < start+speech+pause; tick++ {
		pl := played[tick]
		if pl != (jitter.Played{SilentSamples: frame}) || rmsOf(heard[tick]) != 0 {
			t.Fatalf("tick %d in the pause: %+v, RMS %.0f; want silence", tick, pl, rmsOf(heard[tick]))
		}
	}
	if st := p.Buffer().Stats(); st.ConcealedSamples != 0 || st.ConcealmentEvents != 0 {
		t.Errorf("the pause counted %d concealed samples", st.ConcealedSamples)
	}
	last := played[len(played)-1]
	if !last.Audible || last.Decoded != 1 || rmsOf(heard[len(heard)-1]) < 3000 {
		t.Errorf("after the pause: %+v, want the speech back", last)
	}
}

func TestPlayerNextAllocs(t *testing.T) {
	f := warmPlayer(t)
	if allocs := testing.AllocsPerRun(500, f.step); allocs != 0 {
		t.Errorf("%v allocations per push+Next, want 0", allocs)
	}
}

// feeder pushes a stream of real packets into a player, one a tick, and
// plays each tick.
type feeder struct {
	p       *jitter.Player
	pkt     rtp.Packet
	packets [][]byte
	pcm     [frame]int16
	i       int
}

// warmPlayer is a player in steady state on a stream of real packets.
func warmPlayer(t testing.TB) *feeder {
	f := &feeder{p: newPlayer(t), packets: encodeTone(t, codec.EncoderConfig{}, 50)}
	f.pkt.Version, f.pkt.PayloadType, f.pkt.SSRC = 2, 111, 42
	for range 200 {
		f.step()
	}
	return f
}

func (f *feeder) step() {
	f.pkt.SequenceNumber = uint16(f.i)
	f.pkt.Timestamp = uint32(f.i * frame)
	f.pkt.Payload = f.packets[f.i%len(f.packets)]
	now := at(f.i)
	f.p.Buffer().Push(&f.pkt, now)
	f.p.Next(now, f.pcm[:])
	f.i++
}

// BenchmarkPlayer is one speaker's tick: a packet pushed, 20 ms played
// (decoded by libopus).
func BenchmarkPlayer(b *testing.B) {
	f := warmPlayer(b)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		f.step()
	}
}

// A player on one incoming stream: the network side pushes packets, the
// mixer side takes 20 ms a tick. It starts once the first packet has
// waited its start delay (80 ms, the frame being played included) and
// the 10 ms it keeps above its target.
func ExamplePlayer() {
	p, err := jitter.NewPlayer(jitter.PlayerConfig{})
	if err != nil {
		panic(err)
	}
	enc, _ := codec.NewEncoder(codec.EncoderConfig{})
	buf := make([]byte, codec.MaxPacketBytes)
	var pkt rtp.Packet
	var pcm [codec.FrameSamples]int16
	start := time.Unix(1_700_000_000, 0)
	for tick := range 6 {
		now := start.Add(time.Duration(tick) * 20 * time.Millisecond)
		n, _ := enc.Encode(toneFrames(codec.FrameSamples, tick*codec.FrameSamples), buf)
		pkt.SSRC, pkt.SequenceNumber, pkt.Timestamp = 1, uint16(tick), uint32(tick*codec.FrameSamples)
		pkt.Payload = buf[:n]
		p.Buffer().Push(&pkt, now) // from any goroutine, as packets arrive

		played := p.Next(now, pcm[:]) // once per tick
		fmt.Printf("tick %d: audible %v, %d decoded, %d silent samples\n",
			tick, played.Audible, played.Decoded, played.SilentSamples)
	}
	// Output:
	// tick 0: audible false, 0 decoded, 960 silent samples
	// tick 1: audible false, 0 decoded, 960 silent samples
	// tick 2: audible false, 0 decoded, 960 silent samples
	// tick 3: audible false, 0 decoded, 960 silent samples
	// tick 4: audible true, 1 decoded, 0 silent samples
	// tick 5: audible true, 1 decoded, 0 silent samples
}

// A link whose late packets come in bursts a second and a half apart (a
// burst of 4 packets 100 ms late every 80, 5% of them): a Player's target
// remembers the bursts through the calm between them, so each burst finds
// the level waiting for it; a Buffer used alone, with NetEQ's shorter
// memory, lets its target fall before the next burst (what it is tested
// beside, to show the link tells the two apart).
func TestPlayerTargetHoldsBetweenBursts(t *testing.T) {
	const (
		period, burst = 80, 4
		late          = 5 // ticks: 100 ms
		warm, ticks   = 5 * 50, 30 * 50
	)
	packets := encode(t, codec.EncoderConfig{}, ticks, pulses)
	arrive := func(i int) int {
		if i%period < burst {
			return i + late
		}
		return i
	}
	byTick := make(map[int][]int)
	for i := range ticks {
		byTick[arrive(i)] = append(byTick[arrive(i)], i)
	}
	p := newPlayer(t)
	alone := jitter.New(jitter.Config{})
	pcm := make([]int16, frame)
	var pkt rtp.Packet
	// The bursts' relative delay is 100 ms: a target that covers them is
	// at least that plus the frame being played.
	const covers = 120 * time.Millisecond
	playerLow, aloneLow := 0, 0
	var start jitter.Stats
	for tick := range ticks {
		for _, i := range byTick[tick] {
			pkt.SSRC, pkt.SequenceNumber, pkt.Timestamp = 7, uint16(100+i), uint32(90_000+i*frame)
			pkt.Payload = packets[i]
			p.Buffer().Push(&pkt, at(tick))
			alone.Push(&pkt, at(tick))
		}
		p.Next(at(tick), pcm)
		alone.Pop(at(tick))
		if tick == warm {
			start = p.Buffer().Stats()
		}
		if tick > warm {
			if p.Buffer().TargetDelay() < covers {
				playerLow++
			}
			if alone.TargetDelay() < covers {
				aloneLow++
			}
		}
	}
	end := p.Buffer().Stats()
	t.Logf("ticks with the target under %v after %d s: Player %d, Buffer alone %d of %d; the Player's late packets %d, concealment events %d",
		covers, warm/50, playerLow, aloneLow, ticks-warm-1,
		end.PacketsDiscarded-start.PacketsDiscarded, end.ConcealmentEvents-start.ConcealmentEvents)
	if playerLow > 0 {
		t.Errorf("the Player's target fell under %v on %d ticks between bursts, want none", covers, playerLow)
	}
	if aloneLow < (ticks-warm)/10 {
		t.Errorf("the Buffer alone had its target under %v on only %d ticks: the link does not test the memory", covers, aloneLow)
	}
	if d, c := end.PacketsDiscarded-start.PacketsDiscarded, end.ConcealmentEvents-start.ConcealmentEvents; d+c > 0 {
		t.Errorf("the Player discarded %d late packets and concealed %d times after the first %d s, want none", d, c, warm/50)
	}
}

// On a link that keeps its packets in order (speech delayed 60 ± 30 ms),
// a late packet holds back those behind it and the buffer runs empty,
// having played its last packet to the end. The Player keeps some of
// that packet's audio back (it stretches it when the next packet is not
// there), at least the two shortest pitch periods a bridge needs, so that
// a packet that then comes late can be bridged by stretching what is
// held rather than concealed.
func TestPlayerKeepsAudioToBridgeALatePacket(t *testing.T) {
	const (
		warm, ticks = 5 * 50, 30 * 50
		twoPeriods  = 5 * time.Millisecond // tsm.MinPeriod's
	)
	voice := signal.NewVoice(1)
	packets := encode(t, codec.EncoderConfig{}, ticks, func(n, _ int) []int16 {
		pcm := make([]int16, n)
		voice.Fill(pcm)
		return pcm
	})
	rng := rand.New(rand.NewPCG(1, 2))
	byTick := make(map[int][]int)
	last := 0
	for i := range ticks {
		d := max(0, 60+30*rng.NormFloat64()) // ms: 60 ± 30, in order
		last = max(last, i+int(math.Round(d/20)))
		byTick[last] = append(byTick[last], i)
	}
	p := newPlayer(t)
	pcm := make([]int16, frame)
	var pkt rtp.Packet
	emptied, short := 0, 0
	for tick := range ticks {
		for _, i := range byTick[tick] {
			pkt.SSRC, pkt.SequenceNumber, pkt.Timestamp = 7, uint16(100+i), uint32(90_000+i*frame)
			pkt.Payload = packets[i]
			p.Buffer().Push(&pkt, at(tick))
		}
		pl := p.Next(at(tick), pcm)
		// Nothing buffered after a packet played: what is left is the
		// audio the Player held back.
		if st := p.Buffer().Stats(); tick > warm && pl.Decoded > 0 && st.BufferLevel < 20*time.Millisecond {
			emptied++
			if st.BufferLevel < twoPeriods {
				short++
				t.Logf("tick %d: the buffer ran empty with %v held", tick, st.BufferLevel)
			}
		}
	}
	st := p.Buffer().Stats()
	t.Logf("after %d s the buffer ran empty after a packet %d times; %d concealment events in all", warm/50, emptied, st.ConcealmentEvents)
	if emptied == 0 {
		t.Fatal("the buffer never ran empty: the link does not test it")
	}
	if short > 0 {
		t.Errorf("%d of %d times the buffer ran empty with under %v held, too little to bridge", short, emptied, twoPeriods)
	}
}
