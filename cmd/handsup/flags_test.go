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
	if s, err := secret(file, "HANDSUP_TURN_SECRET", "-turn-secret-file"); err != nil || string(s) != "north" {
		t.Errorf("secret file: %q, %v", s, err)
	}
	if s, _ := secret("", "HANDSUP_TURN_SECRET", "-turn-secret-file"); string(s) != "from-env" {
		t.Errorf("secret from the environment: %q", s)
	}
	t.Setenv("HANDSUP_TURN_SECRET", "")
	err := run([]string{"-http", "127.0.0.1:0", "-rtp", "127.0.0.1:0", "-webrtc-udp", "",
		"-turn", "turn:turn.example:3478?transport=udp"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "secret") {
		t.Errorf("TURN without a secret: %v", err)
	}
}

// TestSecretsNotOnTheCommandLine: the admin token and the participant-token
// key come from the environment or files only: the old flags are gone,
// the old variables are refused by name, a short admin token or key is
// refused, and the key reads as hex or base64.
func TestSecretsNotOnTheCommandLine(t *testing.T) {
	base := []string{"-http", "127.0.0.1:0", "-rtp", "127.0.0.1:0", "-webrtc-udp", ""}
	for _, flagName := range []string{"-token", "-invite-secret"} {
		if err := run(append(base, flagName, "x"), io.Discard); err == nil || !strings.Contains(err.Error(), "not defined") {
			t.Errorf("%s is still a flag: %v", flagName, err)
		}
	}
	t.Setenv("HANDSUP_TOKEN", "0123456789abcdef")
	if err := run(base, io.Discard); err == nil || !strings.Contains(err.Error(), "HANDSUP_ADMIN_TOKEN") {
		t.Errorf("HANDSUP_TOKEN: %v", err)
	}
	os.Unsetenv("HANDSUP_TOKEN")
	t.Setenv("HANDSUP_ADMIN_TOKEN", "short")
	if err := run(base, io.Discard); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Errorf("a 5-character admin token: %v", err)
	}
	t.Setenv("HANDSUP_ADMIN_TOKEN", "")
	t.Setenv("HANDSUP_TOKEN_KEY", "00ff")
	if err := run(base, io.Discard); err == nil || !strings.Contains(err.Error(), "at least 32") {
		t.Errorf("a 2-byte token key: %v", err)
	}

	want := []byte("0123456789abcdef0123456789abcdef")
	for _, text := range []string{
		"30313233343536373839616263646566" + "30313233343536373839616263646566",
		"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",
	} {
		if key, err := decodeKey([]byte(text)); err != nil || string(key) != string(want) {
			t.Errorf("decodeKey(%q) = %q, %v", text, key, err)
		}
	}
	file := filepath.Join(t.TempDir(), "admin")
	if err := os.WriteFile(file, []byte("an admin token of 32 characters\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if s, err := secret(file, "HANDSUP_ADMIN_TOKEN", "-admin-token-file"); err != nil || string(s) != "an admin token of 32 characters" {
		t.Errorf("admin token file: %q, %v", s, err)
	}
}

// TestMetricsPerRoomFlags: the cap must be at least 1; the flag and its
// environment variable are read.
func TestMetricsPerRoomFlags(t *testing.T) {
	base := []string{"-http", "127.0.0.1:0", "-rtp", "127.0.0.1:0", "-webrtc-udp", ""}
	if err := run(append(base, "-metrics-per-room", "-metrics-per-room-max", "0"), io.Discard); err == nil ||
		!strings.Contains(err.Error(), "-metrics-per-room-max must be at least 1") {
		t.Errorf("-metrics-per-room-max 0: %v", err)
	}
	t.Setenv("HANDSUP_METRICS_PER_ROOM_MAX", "-3")
	if err := run(base, io.Discard); err == nil || !strings.Contains(err.Error(), "at least 1") {
		t.Errorf("HANDSUP_METRICS_PER_ROOM_MAX=-3: %v", err)
	}
}

// TestPhasesFlag: -phases (and HANDSUP_PHASES) past engine.MaxPhases, or
// negative, is refused before the server starts.
func TestPhasesFlag(t *testing.T) {
	expectRefused(t, "phases", "-phases must be 0 to 10", "12", "-1", "11")
}

// TestShedComplexityFlag: -shed-complexity (and HANDSUP_SHED_COMPLEXITY)
// outside -1 to 10 is refused before the server starts.
func TestShedComplexityFlag(t *testing.T) {
	expectRefused(t, "shed-complexity", "-shed-complexity must be -1 to 10", "12", "-2", "11")
}

// expectRefused runs the server with -name at each of flagValues, then
// with its HANDSUP_ variable at envValue, and expects each refused with
// want before it starts.
func expectRefused(t *testing.T, name, want, envValue string, flagValues ...string) {
	t.Helper()
	base := []string{"-http", "127.0.0.1:0", "-rtp", "127.0.0.1:0", "-webrtc-udp", ""}
	for _, bad := range flagValues {
		if err := run(append(base, "-"+name, bad), io.Discard); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("-%s %s: %v", name, bad, err)
		}
	}
	env := "HANDSUP_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	t.Setenv(env, envValue)
	if err := run(base, io.Discard); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s=%s: %v", env, envValue, err)
	}
}
