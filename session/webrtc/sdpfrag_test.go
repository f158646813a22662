package webrtc_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/handsup-audio/handsup/internal/webrtctest"
	"github.com/handsup-audio/handsup/session/webrtc"
)

func TestSDPFrag(t *testing.T) {
	sdp := "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" +
		"a=ice-ufrag:old\r\na=ice-pwd:oldpwd\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\na=sendrecv\r\n"
	f := webrtc.ParseSDPFrag(sdp)
	if f.Ufrag != "old" || f.Pwd != "oldpwd" || len(f.Candidates) != 1 {
		t.Fatalf("parsed %+v", f)
	}
	next := webrtc.SDPFrag{Ufrag: "new", Pwd: "newpwd", Candidates: []string{"candidate:2 1 udp 1 127.0.0.1 6000 typ host"}}
	if got := webrtc.ParseSDPFrag(next.String()); got.Ufrag != "new" || got.Pwd != "newpwd" || len(got.Candidates) != 1 {
		t.Errorf("round trip %+v", got)
	}
	patched := next.Patch(sdp)
	if got := webrtc.ParseSDPFrag(patched); got.Ufrag != "new" || got.Pwd != "newpwd" ||
		len(got.Candidates) != 1 || got.Candidates[0] != next.Candidates[0] {
		t.Errorf("patched %q", patched)
	}
	if !strings.Contains(patched, "a=sendrecv\r\n") || strings.Contains(patched, "5000") {
		t.Errorf("patched %q", patched)
	}
}

// TestTrickle: candidates under the current credentials are added, with an
// empty answer; a malformed one is refused as a bad offer.
func TestTrickle(t *testing.T) {
	tr := listen(t, webrtc.Config{})
	_, p := connect(t, tr, webrtctest.Options{})
	cur := webrtc.ParseSDPFrag(p.PeerConnection().RemoteDescription().SDP)
	ok := webrtc.SDPFrag{Ufrag: cur.Ufrag, Pwd: cur.Pwd, Candidates: []string{"candidate:9 1 udp 1 127.0.0.1 6001 typ host"}}
	if answer, err := p.ApplySDPFrag(context.Background(), ok.String()); err != nil || answer != "" {
		t.Errorf("trickle: %q, %v", answer, err)
	}
	bad := webrtc.SDPFrag{Ufrag: cur.Ufrag, Pwd: cur.Pwd, Candidates: []string{"candidate:nonsense"}}
	if _, err := p.ApplySDPFrag(context.Background(), bad.String()); !errors.Is(err, webrtc.ErrBadOffer) {
		t.Errorf("bad candidate: %v", err)
	}
}
