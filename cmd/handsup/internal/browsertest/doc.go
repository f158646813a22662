// Package browsertest holds the tests of handsup's web client in a real
// headless Chromium, driven over the DevTools protocol (chromedp), with
// ffmpeg as the other clients: a browser listener hears an ffmpeg
// speaker, a browser speaker is heard by an ffmpeg listener and not by
// itself, and the room flow (hand, promotion, mute) runs through the page.
// It has no code of its own; the tests skip when chromium is missing (make
// deps installs it).
package browsertest
