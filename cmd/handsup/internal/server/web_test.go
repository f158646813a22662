package server

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestWebClientServed: the page is served at / and /rooms/{room} without
// a credential, with its script and style sheet, under a policy that
// loads nothing from elsewhere; the API's JSON 404 is unchanged.
func TestWebClientServed(t *testing.T) {
	ts := startServer(t, adminTok)
	for _, c := range []struct {
		path, ctype, holds string
		status             int
	}{
		{"/", "text/html", `<script src="/web/app.js"`, 200},
		{"/rooms/demo", "text/html", `id="token"`, 200},
		{"/web/app.js", "text/javascript", "function openEvents", 200},
		{"/web/style.css", "text/css", "@media", 200},
		{"/web/nothing.js", "", "", 404},
		{"/v1/nothing", "application/json", `"error"`, 404},
	} {
		resp, err := http.Get(ts.base + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := c.status
		if resp.StatusCode != want || !strings.HasPrefix(resp.Header.Get("Content-Type"), c.ctype) {
			t.Errorf("GET %s: %d %q, want %d %q", c.path, resp.StatusCode, resp.Header.Get("Content-Type"), want, c.ctype)
		}
		if !strings.Contains(string(body), c.holds) {
			t.Errorf("GET %s does not hold %q", c.path, c.holds)
		}
		if want == 200 && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", c.path, resp.Header.Get("Content-Security-Policy"))
		}
	}
}
