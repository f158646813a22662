package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestICEServerFlags: -stun and -turn repeat or take commas, and replace
// the environment's list; the TURN secret comes from a file or the
// environment, and a TURN URL without one is refused.
func TestICEServerFlags(t *testing.T) {
	t.Setenv("HANDSUP_STUN", "stun:env.example:3478")
	l := listFlag{list: splitList(os.Getenv("HANDSUP_STUN"))}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.Var(&l, "stun", "")
	if err := fs.Parse([]string{"-stun", "stun:a.example:3478, stun:b.example:3478", "-stun", "stun:c.example"}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"stun:a.example:3478", "stun:b.example:3478", "stun:c.example"}; !slices.Equal(l.list, want) {
		t.Errorf("-stun: %q, want %q", l.list, want)
	}

	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte("north\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HANDSUP_TURN_SECRET", "from-env")
	if s, err := turnSecret(file); err != nil || string(s) != "north" {
		t.Errorf("secret file: %q, %v", s, err)
	}
	if s, _ := turnSecret(""); string(s) != "from-env" {
		t.Errorf("secret from the environment: %q", s)
	}
	t.Setenv("HANDSUP_TURN_SECRET", "")
	err := run([]string{"-http", "127.0.0.1:0", "-rtp", "127.0.0.1:0", "-webrtc-udp", "",
		"-turn", "turn:turn.example:3478?transport=udp"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "secret") {
		t.Errorf("TURN without a secret: %v", err)
	}
}
