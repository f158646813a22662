package server

import (
	"embed"
	"io/fs"
	"net/http"
)

// webFiles is the web client: a page, its script and its style sheet,
// plain files with no build step.
//
//go:embed web
var webFiles embed.FS

// pageHeaders are sent with every file of the web client: the page loads
// nothing from elsewhere and is never framed; no URL of it leaks in a
// Referer.
func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'; media-src 'self' blob: mediastream:; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
}

// webRoutes serves the web client: the page at / and /rooms/{room} (the
// room is read from the path by the script; the token is pasted, never in
// the URL) and its files under /web/.
func webRoutes(mux *http.ServeMux) {
	sub, _ := fs.Sub(webFiles, "web") // the directory is embedded: never fails
	page, _ := fs.ReadFile(sub, "index.html")
	files := http.StripPrefix("/web/", http.FileServerFS(sub))
	mux.HandleFunc("GET /web/", func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w.Header())
		files.ServeHTTP(w, r)
	})
	servePage := func(w http.ResponseWriter, _ *http.Request) {
		pageHeaders(w.Header())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	}
	mux.HandleFunc("GET /{$}", servePage)
	mux.HandleFunc("GET /rooms/{room}", servePage)
}
