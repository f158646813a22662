package webrtc

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// gcmStream's packets are pion's, byte for byte, across a sequence number
// wrap and with retransmissions from before and after it, under both
// AES-GCM profiles; pion's receiving context takes every one of them.
func TestGCMStreamMatchesPion(t *testing.T) {
	for _, prof := range []srtp.ProtectionProfile{srtp.ProtectionProfileAeadAes128Gcm, srtp.ProtectionProfileAeadAes256Gcm} {
		t.Run(prof.String(), func(t *testing.T) {
			keyLen, _ := prof.KeyLen()
			saltLen, _ := prof.SaltLen()
			key, salt := make([]byte, keyLen), make([]byte, saltLen)
			for i := range key {
				key[i] = byte(3*i + 1)
			}
			for i := range salt {
				salt[i] = byte(200 - 7*i)
			}
			ours, err := newGCMStream(prof, key, salt)
			if err != nil {
				t.Fatal(err)
			}
			theirs, err := srtp.CreateContext(key, salt, prof)
			if err != nil {
				t.Fatal(err)
			}
			receiver, err := srtp.CreateContext(key, salt, prof)
			if err != nil {
				t.Fatal(err)
			}
			// New packets across the wrap, then retransmissions of one
			// from before it and one after, then new again; a gap.
			seqs := []uint16{65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 65533, 1, 3, 4, 300}
			payload := bytes.Repeat([]byte{0xab, 0x01, 0x7f}, 27)
			for i, seq := range seqs {
				hdr := make([]byte, 12)
				hdr[0], hdr[1] = 0x80, 111
				binary.BigEndian.PutUint16(hdr[2:], seq)
				binary.BigEndian.PutUint32(hdr[4:], uint32(i*960))
				binary.BigEndian.PutUint32(hdr[8:], 0xdecafbad)
				got, err := ours.protect(nil, hdr, payload)
				if err != nil {
					t.Fatal(err)
				}
				var h rtp.Header
				plain := append(append([]byte{}, hdr...), payload...)
				if _, err := h.Unmarshal(plain); err != nil {
					t.Fatal(err)
				}
				want, err := theirs.EncryptRTP(nil, plain, &h)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("packet %d (seq %d) differs from pion's", i, seq)
				}
				back, err := receiver.DecryptRTP(nil, got, nil)
				if err != nil || !bytes.Equal(back, plain) {
					t.Fatalf("packet %d (seq %d): pion decrypts %v", i, seq, err)
				}
			}
		})
	}
}

func TestGCMStreamRefuses(t *testing.T) {
	if _, err := newGCMStream(srtp.ProtectionProfileAes128CmHmacSha1_80, make([]byte, 16), make([]byte, 14)); err == nil {
		t.Fatal("an AES-CM profile was taken for GCM")
	}
	g, err := newGCMStream(srtp.ProtectionProfileAeadAes128Gcm, make([]byte, 16), make([]byte, 12))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.protect(nil, make([]byte, 8), nil); err == nil {
		t.Fatal("an 8-byte header was protected")
	}
	buf, hdr, payload := make([]byte, 0, 256), make([]byte, 12), make([]byte, 80)
	if n := testing.AllocsPerRun(100, func() {
		_, _ = g.protect(buf, hdr, payload)
	}); n != 0 {
		t.Fatalf("%v allocations per packet", n)
	}
}
