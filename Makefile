# handsup: `make run` starts the server with a demo room, `make test` runs
# the tests. Both install what they need first (make deps).

GO ?= go
APT_PACKAGES := pkg-config libopus-dev libopusfile-dev ffmpeg prometheus \
	gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps test bench bench-demo bench-e2e run vet fmt fuzz

# deps makes a fresh Debian/Ubuntu machine ready: libopus and pkg-config for
# cgo, ffmpeg, prometheus (with promtool, which checks and unit-tests
# deploy/prometheus's rules) and GStreamer (gst-launch-1.0 with udpsrc,
# rtpjitterbuffer, rtpopusdepay and opusdec, for the DTX listener test) for
# the end-to-end tests, chromium for the web client's browser tests,
# installed only when missing.
deps:
	@if pkg-config --exists opus 2>/dev/null && command -v ffmpeg >/dev/null && command -v prometheus >/dev/null && command -v promtool >/dev/null && \
		command -v gst-launch-1.0 >/dev/null && gst-inspect-1.0 udpsrc >/dev/null 2>&1 && \
		gst-inspect-1.0 rtpopusdepay >/dev/null 2>&1 && gst-inspect-1.0 opusdec >/dev/null 2>&1 && \
		{ command -v chromium || command -v chromium-browser || command -v google-chrome; } >/dev/null; then \
		echo "deps: libopus $$(pkg-config --modversion opus), ffmpeg, prometheus, GStreamer and chromium found"; \
	elif [ "$$(uname)" = Darwin ]; then \
		echo "deps: run: brew install pkg-config opus opusfile ffmpeg prometheus gstreamer && brew install --cask chromium"; exit 1; \
	elif command -v apt-get >/dev/null; then \
		echo "deps: installing $(APT_PACKAGES)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	else \
		echo "deps: install pkg-config, libopus (with headers), ffmpeg, prometheus, GStreamer (base and good plugins) and chromium for your system"; exit 1; \
	fi

vet: deps
	$(GO) vet ./...

test: deps vet
	$(GO) test -race -count=1 ./...

# fuzz runs every native fuzz target in the tree (each func FuzzXxx in a
# _test.go) for FUZZTIME, one after another; make test runs their seed
# corpora (f.Add and testdata/fuzz), where a failing input found here is
# saved: keep it as a regression seed once fixed.
FUZZTIME ?= 30s
fuzz: deps
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' . | sort); do \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "fuzz: $$t in ./$$(dirname $${f#./}) for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) ./$$(dirname $${f#./}); \
		done; \
	done

# bench runs every hot-path benchmark with allocations reported.
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

# run: the server on 127.0.0.1 (HTTP 8080, RTP 5004) with an open room
# "demo"; it prints how to speak and listen with ffmpeg.
run: deps
	$(GO) run ./cmd/handsup -demo-room demo

# bench-demo: the engine benchmark — one room, 5 speakers (3 talking),
# 10,000 listeners, 10 s.
bench-demo: deps
	$(GO) run ./cmd/handsup-bench -rooms 1 -speakers 5 -active 3 -listeners 10000 -duration 10s

# bench-e2e: the server over real UDP on loopback against a bare sendmmsg
# sender, 800 to 10,000 listeners, 3 repeats of 10 s each (about 8 min).
bench-e2e: deps
	$(GO) run ./cmd/handsup-bench -e2e -sweep 800,1600,3200,6400,10000

fmt:
	gofmt -w $$(git ls-files '*.go')
