package webrtc

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Only SRTP media waits for a flush: STUN (consent checks), DTLS and
// SRTCP go out at once.
func TestIsRTP(t *testing.T) {
	pad := func(b ...byte) []byte { return append(b, make([]byte, 12)...) }
	for _, c := range []struct {
		name string
		pkt  []byte
		want bool
	}{
		{"RTP, PT 111", pad(0x80, 111), true},
		{"RTP, marker, PT 63", pad(0x80, 0x80|63), true},
		{"SRTCP sender report", pad(0x81, 200), false},
		{"SRTCP NACK", pad(0x81, 205), false},
		{"STUN binding request", pad(0x00, 0x01), false},
		{"DTLS record", pad(22, 0xfe), false},
		{"TURN channel data", pad(0x40, 0x00), false},
		{"too short for RTP", []byte{0x80, 111, 0, 1}, false},
	} {
		if got := isRTP(c.pkt); got != c.want {
			t.Errorf("%s: isRTP = %v, want %v", c.name, got, c.want)
		}
	}
}

// Writers reserving and filling datagrams while others flush: every
// datagram arrives whole, none torn by a flush that did not wait.
func TestSendConnConcurrentReserve(t *testing.T) {
	src, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	_ = dst.SetReadBuffer(4 << 20)
	var st counters
	s := newSendConn(src, &st)
	to := dst.LocalAddr().(*net.UDPAddr).AddrPort()
	const writers, each = 4, 300
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				b, buf := s.reserve(100, to)
				for j := range buf {
					buf[j] = byte(w*each + i)
				}
				buf[0], buf[1] = 0x80, 111 // RTP, as the batch holds
				b.done()
				if i%7 == 0 {
					s.Flush()
				}
			}
		}()
	}
	wg.Wait()
	s.Flush()
	if got := st.datagramsOut.Load(); got != writers*each {
		t.Fatalf("the kernel took %d datagrams, want %d", got, writers*each)
	}
	// Loopback may drop what overflows the receive buffer; what arrives
	// must be whole.
	pkt := make([]byte, 200)
	got := 0
	for ; got < writers*each; got++ {
		_ = dst.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := dst.Read(pkt)
		if err != nil {
			break
		}
		if n != 100 {
			t.Fatalf("datagram of %d bytes", n)
		}
		for j := 2; j < n; j++ {
			if pkt[j] != pkt[2] {
				t.Fatalf("datagram %d torn: byte %d is %d, byte 2 is %d", got, j, pkt[j], pkt[2])
			}
		}
	}
	if got == 0 {
		t.Fatal("nothing arrived")
	}
}
