package webrtc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/srtp/v3"
)

// cipherSuites are the DTLS suites the transport accepts: ECDHE with its
// ECDSA certificate and a SHA-256 PRF, which every browser offers. One
// PRF is what lets keyCapture derive the SRTP keys as the DTLS stack does.
var cipherSuites = []dtls.CipherSuiteID{dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}

// srtpProfiles are the SRTP profiles the transport accepts, the client
// choosing among them: AES-128-GCM (every browser offers it; gcmStream
// protects it: 10 AES rounds and a 176-byte key schedule where AES-256
// takes 14 and 240, for each listener's packet), and AES-CM with
// HMAC-SHA1 for clients without it.
var srtpProfiles = []dtls.SRTPProtectionProfile{
	dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80,
}

// keyCapture learns one peer's SRTP keys during its DTLS handshake, in
// which the transport is the server: the client random and master secret
// from pion's key log (written to this process's memory only, never to a
// file or a log), the server random and the SRTP profile from the
// ServerHello the transport sends. From them it derives the keying
// material exactly as DTLS-SRTP does (RFC 5764 §4.2: the TLS exporter,
// RFC 5705, label "EXTRACTOR-dtls_srtp"), so the peer's own SRTP context
// protects its stream with the keys pion's would have used. The secret is
// dropped once derived.
type keyCapture struct {
	mu           sync.Mutex
	clientRandom []byte
	masterSecret []byte
	serverRandom []byte
	profile      srtp.ProtectionProfile
}

var errNoKeys = errors.New("webrtc: DTLS keys not captured")

// Write takes pion's key log lines: "CLIENT_RANDOM <hex> <hex>".
func (k *keyCapture) Write(b []byte) (int, error) {
	f := bytes.Fields(b)
	if len(f) != 3 || string(f[0]) != "CLIENT_RANDOM" {
		return len(b), nil
	}
	cr, err1 := hex.DecodeString(string(f[1]))
	ms, err2 := hex.DecodeString(string(f[2]))
	if err1 != nil || err2 != nil {
		return len(b), nil
	}
	k.mu.Lock()
	k.clientRandom, k.masterSecret = cr, ms
	k.mu.Unlock()
	return len(b), nil
}

// serverHello notes the random and the SRTP profile of the ServerHello the
// transport sends, which it passes on unchanged.
func (k *keyCapture) serverHello(m handshake.MessageServerHello) handshake.Message {
	r := m.Random.MarshalFixed()
	k.mu.Lock()
	k.serverRandom = r[:]
	for _, e := range m.Extensions {
		if u, ok := e.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 {
			k.profile = srtp.ProtectionProfile(u.ProtectionProfiles[0])
		}
	}
	k.mu.Unlock()
	return &m
}

// sender derives the transport's (the DTLS server's) outbound SRTP
// protection, and forgets the master secret: a gcmStream under the AES-GCM
// profiles, pion's srtp.Context under the others.
func (k *keyCapture) sender() (*fastPath, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.masterSecret == nil || k.serverRandom == nil || k.profile == 0 {
		return nil, errNoKeys
	}
	cfg := srtp.Config{Profile: k.profile}
	err := cfg.ExtractSessionKeysFromDTLS(k, false)
	clear(k.masterSecret)
	k.masterSecret = nil
	if err != nil {
		return nil, err
	}
	key, salt := cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt
	if g, err := newGCMStream(cfg.Profile, key, salt); err == nil {
		return &fastPath{gcm: *g}, nil
	}
	ctx, err := srtp.CreateContext(key, salt, cfg.Profile)
	if err != nil {
		return nil, err
	}
	return &fastPath{ctx: ctx}, nil
}

// ExportKeyingMaterial is the TLS 1.2 exporter (RFC 5705) without a
// context, on the captured secrets; k.mu is held by context.
func (k *keyCapture) ExportKeyingMaterial(label string, ctx []byte, length int) ([]byte, error) {
	if len(ctx) != 0 {
		return nil, fmt.Errorf("webrtc: exporter context not supported")
	}
	seed := make([]byte, 0, len(label)+len(k.clientRandom)+len(k.serverRandom))
	seed = append(append(append(seed, label...), k.clientRandom...), k.serverRandom...)
	return prf.PHash(k.masterSecret, seed, length, sha256.New)
}
