package server

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/handsup-audio/handsup/session/rtpudp"
)

var headroom = flag.Bool("headroom", false, "run the headroom-admission measurement: a room grows until the engine refuses it")

// TestHeadroomAdmission (on request: -headroom, without -race) grows one
// room of a real server (MaxTickLoad 0.3, 50 packets a second to every
// listener) with listeners at loopback addresses where nothing listens,
// until the engine refuses a join for load, while a listener in another
// room counts its RTP packets each second on a real socket. It logs the
// figures and asserts the refusal came, with a 503 and Retry-After,
// before 50,000 listeners, and that the other listener heard at least 40
// packets in every whole second.
func TestHeadroomAdmission(t *testing.T) {
	if !*headroom {
		t.Skip("a measurement of this machine's capacity: -headroom runs it")
	}
	ts := startServer(t, "", func(c *Config) {
		c.MaxTickLoad = 0.3
		c.JoinRate, c.JoinBurst = 1000, 1000
		c.MaxRoomParticipants, c.MaxParticipants = 100_000, 100_000
		c.SRInterval = 5 * time.Second // the server's default, not the tests' 200 ms
	})
	ts.mustCall("POST", "/v1/rooms", `{"id":"big","no_dtx":true}`, 201, nil)
	ts.mustCall("POST", "/v1/rooms", `{"id":"other","no_dtx":true}`, 201, nil)
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ts.mustCall("POST", "/v1/rooms/other/participants",
		fmt.Sprintf(`{"id":"o","role":"listener","rtp":{"addr":%q}}`, other.LocalAddr()), 201, nil)
	var heard atomic.Int64
	go func() {
		buf := make([]byte, 1500)
		for {
			n, err := other.Read(buf)
			if err != nil {
				return
			}
			if !rtpudp.IsRTCP(buf[:n]) {
				heard.Add(1)
			}
		}
	}()

	const most = 50_000
	var joined, next atomic.Int64
	refusal := make(chan *http.Response, 8)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= most; i = next.Add(1) {
				body := fmt.Sprintf(`{"id":"l%d","role":"listener","rtp":{"addr":"127.%d.%d.%d:9"}}`, i, 1+i/65536, i/256%256, i%256)
				resp, err := http.Post(ts.base+"/v1/rooms/big/participants", "application/json", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				switch resp.StatusCode {
				case 201:
					joined.Add(1)
				case 429:
					time.Sleep(50 * time.Millisecond)
				default:
					refusal <- resp
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	heard.Store(0)
	least := int64(1 << 62)
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
			n := heard.Swap(0)
			least = min(least, n)
			st := ts.s.eng.Stats()
			t.Logf("%6d listeners, tick load %v, overruns %d, skipped %d; the other room's listener: %d packets/s",
				joined.Load(), st.TickLoad.Round(10*time.Microsecond), st.Overruns, st.Skipped, n)
		}
	}
	close(refusal)
	resp := <-refusal
	if resp == nil {
		t.Fatalf("%d listeners joined without a refusal", joined.Load())
	}
	st := ts.s.eng.Stats()
	t.Logf("refused at %d listeners: %d %q, Retry-After %s; overruns %d, skipped %d",
		joined.Load(), resp.StatusCode, resp.Status, resp.Header.Get("Retry-After"), st.Overruns, st.Skipped)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("refused with %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for range 3 { // the room stays at its size: the other listener still hears the room
		<-tick.C
		n := heard.Swap(0)
		least = min(least, n)
		t.Logf("after the refusal: the other room's listener: %d packets/s", n)
	}
	if least < 40 {
		t.Errorf("the other room's listener heard %d packets in a second, want at least 40", least)
	}
}
