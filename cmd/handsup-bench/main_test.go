package main

import (
	"bytes"
	"strings"
	"testing"
)

// Bad flags exit with status 2 and say why, before any work starts.
func TestRejectsBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-active", "6", "-speakers", "5"}, "must not exceed speakers"},
		{[]string{"-listeners", "-1"}, "must not be negative"},
		{[]string{"-rooms", "0"}, "rooms must be at least 1"},
		{[]string{"-duration", "500ms"}, "at least 1s"},
		{[]string{"-bogus"}, "flag provided but not defined"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: stderr %q, want it to say %q", tc.args, stderr.String(), tc.want)
		}
		if stdout.Len() != 0 {
			t.Errorf("%v: wrote %q to stdout", tc.args, stdout.String())
		}
	}
}
