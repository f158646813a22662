# handsup: `make run` runs the demo benchmark, `make test` runs the tests.
# Both install what they need first (make deps).

GO ?= go
APT_PACKAGES := pkg-config libopus-dev libopusfile-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps test bench run vet fmt

# deps makes a fresh Debian/Ubuntu machine ready: libopus and pkg-config for
# cgo, installed only when pkg-config cannot find opus.
deps:
	@if pkg-config --exists opus 2>/dev/null; then \
		echo "deps: libopus $$(pkg-config --modversion opus) found"; \
	elif [ "$$(uname)" = Darwin ]; then \
		echo "deps: run: brew install pkg-config opus opusfile"; exit 1; \
	elif command -v apt-get >/dev/null; then \
		echo "deps: installing $(APT_PACKAGES)"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(APT_PACKAGES); \
	else \
		echo "deps: install pkg-config and libopus (with headers) for your system"; exit 1; \
	fi

vet: deps
	$(GO) vet ./...

test: deps vet
	$(GO) test -race -count=1 ./...

# bench runs every hot-path benchmark with allocations reported.
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

# run: the demo — one room, 5 speakers (3 talking), 10,000 listeners, 10 s.
run: deps
	$(GO) run ./cmd/handsup-bench -rooms 1 -speakers 5 -active 3 -listeners 10000 -duration 10s

fmt:
	gofmt -w $$(git ls-files '*.go')
