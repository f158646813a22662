package webrtc

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pion/srtp/v3"
)

// gcmStream protects one outbound SRTP stream under AEAD_AES_128_GCM or
// AEAD_AES_256_GCM (RFC 7714), the profiles browsers negotiate. It is
// what pion's srtp.Context does for such a stream, kept in one small
// struct so that a tick's sends to thousands of listeners each touch a
// few cache lines (the AES key schedule, the salt, the rollover counter)
// instead of pion's context, its per-SSRC map and its cipher. The session
// layer's tests hold its output byte for byte against pion's. It is not
// safe for concurrent use (Peer.mu guards it).
type gcmStream struct {
	aead    cipher.AEAD
	salt    [12]byte
	roc     uint32 // rollover counter of last
	last    uint16 // the highest sequence number protected
	started bool
	iv      [12]byte // the packet's IV: kept here, as Seal's argument would escape
}

var errShortHeader = errors.New("webrtc: RTP header shorter than 12 bytes")

// gcmTagLen is what AES-GCM protection adds to a packet: its tag.
const gcmTagLen = 16

// newGCMStream derives the session key and salt from the DTLS-SRTP master
// key and salt (RFC 3711 §4.3 with the AES-CM PRF, RFC 7714 §11).
func newGCMStream(profile srtp.ProtectionProfile, masterKey, masterSalt []byte) (*gcmStream, error) {
	if profile != srtp.ProtectionProfileAeadAes128Gcm && profile != srtp.ProtectionProfileAeadAes256Gcm {
		return nil, fmt.Errorf("webrtc: %v is not an AES-GCM profile", profile)
	}
	key, err := aesCMKDF(0x00, masterKey, masterSalt, len(masterKey))
	if err != nil {
		return nil, err
	}
	salt, err := aesCMKDF(0x02, masterKey, masterSalt, 12)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	g := &gcmStream{aead: aead}
	copy(g.salt[:], salt)
	return g, nil
}

// aesCMKDF is SRTP's key derivation with a key derivation rate of 0
// (RFC 3711 §4.3.1, §4.3.3): AES in counter mode under the master key,
// from the master salt with the label at octet 7.
func aesCMKDF(label byte, masterKey, masterSalt []byte, n int) ([]byte, error) {
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, err
	}
	var in [16]byte
	copy(in[:14], masterSalt)
	in[7] ^= label
	out := make([]byte, (n+15)/16*16)
	for i := 0; i*16 < n; i++ {
		binary.BigEndian.PutUint16(in[14:], uint16(i))
		block.Encrypt(out[i*16:], in[:])
	}
	return out[:n], nil
}

// rocFor is the rollover counter of seq as the sender counts (RFC 3711
// §3.3.1): it goes up when the sequence number wraps; a retransmission of
// a packet from before the wrap keeps the counter it went out with.
func (g *gcmStream) rocFor(seq uint16) uint32 {
	if !g.started {
		g.started, g.last = true, seq
		return g.roc
	}
	if int16(seq-g.last) > 0 { // newer
		if seq < g.last {
			g.roc++
		}
		g.last = seq
		return g.roc
	}
	if seq > g.last { // older, from before the last wrap
		return g.roc - 1
	}
	return g.roc
}

// protect appends to dst the SRTP packet of header and payload: the header
// in the clear (authenticated), the payload encrypted, and the 16-byte
// tag. header is the whole RTP header, CSRCs and extension included.
func (g *gcmStream) protect(dst, header, payload []byte) ([]byte, error) {
	if len(header) < 12 {
		return dst, errShortHeader
	}
	seq := binary.BigEndian.Uint16(header[2:])
	iv := &g.iv // (0x0000 || SSRC || ROC || SEQ) XOR salt, RFC 7714 §8.1
	iv[0], iv[1] = 0, 0
	copy(iv[2:6], header[8:12])
	binary.BigEndian.PutUint32(iv[6:], g.rocFor(seq))
	binary.BigEndian.PutUint16(iv[10:], seq)
	for i := range iv {
		iv[i] ^= g.salt[i]
	}
	dst = append(dst, header...)
	return g.aead.Seal(dst, iv[:], payload, header), nil
}
