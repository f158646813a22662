package webrtc

import (
	"context"
	"fmt"
	"strings"

	pion "github.com/pion/webrtc/v4"
)

// SDPFrag is an application/trickle-ice-sdpfrag body (RFC 8840): ICE
// credentials and candidates, as WHIP and WHEP clients PATCH them to
// trickle candidates or restart ICE.
type SDPFrag struct {
	Ufrag, Pwd string
	Candidates []string // each without "a=", e.g. "candidate:1 1 udp ..."
}

// ParseSDPFrag reads the ICE lines of a fragment (or of a whole
// description with one media section); other lines are ignored.
func ParseSDPFrag(s string) SDPFrag {
	var f SDPFrag
	for _, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			f.Ufrag = strings.TrimPrefix(line, "a=ice-ufrag:")
		case strings.HasPrefix(line, "a=ice-pwd:"):
			f.Pwd = strings.TrimPrefix(line, "a=ice-pwd:")
		case strings.HasPrefix(line, "a=candidate:"):
			f.Candidates = append(f.Candidates, strings.TrimPrefix(line, "a="))
		}
	}
	return f
}

// String is the fragment as an application/trickle-ice-sdpfrag body.
func (f SDPFrag) String() string {
	var b strings.Builder
	if f.Ufrag != "" {
		fmt.Fprintf(&b, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\n", f.Ufrag, f.Pwd)
	}
	for _, c := range f.Candidates {
		fmt.Fprintf(&b, "a=%s\r\n", c)
	}
	if f.Ufrag != "" {
		b.WriteString("a=end-of-candidates\r\n")
	}
	return b.String()
}

// Patch returns sdp with the fragment's credentials and candidates in
// place of its own, in every media section: the description an ICE
// restart by fragment stands for.
func (f SDPFrag) Patch(sdp string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(strings.ReplaceAll(sdp, "\r\n", "\n"), "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			fmt.Fprintf(&b, "a=ice-ufrag:%s\r\n", f.Ufrag)
		case strings.HasPrefix(line, "a=ice-pwd:"):
			fmt.Fprintf(&b, "a=ice-pwd:%s\r\n", f.Pwd)
			for _, c := range f.Candidates {
				fmt.Fprintf(&b, "a=%s\r\n", c)
			}
		case strings.HasPrefix(line, "a=candidate:"), line == "a=end-of-candidates":
		default:
			b.WriteString(line + "\r\n")
		}
	}
	return b.String()
}

// ApplySDPFrag takes a WHIP/WHEP client's PATCH of
// application/trickle-ice-sdpfrag. Candidates under the current
// credentials are added (trickle): the answer is empty. New credentials
// restart ICE: the peer renegotiates with the fragment patched into the
// client's last offer, and the answer is the server's new credentials and
// candidates. Errors in the fragment wrap ErrBadOffer.
func (p *Peer) ApplySDPFrag(ctx context.Context, frag string) (string, error) {
	f := ParseSDPFrag(frag)
	remote := p.pc.RemoteDescription()
	if remote == nil {
		return "", fmt.Errorf("%w: no description yet", ErrBadOffer)
	}
	if f.Ufrag == "" || f.Ufrag == ParseSDPFrag(remote.SDP).Ufrag {
		for _, c := range f.Candidates {
			if err := p.pc.AddICECandidate(pion.ICECandidateInit{Candidate: c}); err != nil {
				return "", fmt.Errorf("%w: candidate %q: %w", ErrBadOffer, c, err)
			}
		}
		return "", nil
	}
	if f.Pwd == "" {
		return "", fmt.Errorf("%w: ice-ufrag without ice-pwd", ErrBadOffer)
	}
	answer, err := p.Renegotiate(ctx, f.Patch(remote.SDP))
	if err != nil {
		return "", err
	}
	return ParseSDPFrag(answer).String(), nil
}
