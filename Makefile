# gitmesh — make targets. `make test` is what CI runs (see .ci/run).
GO        ?= go
PKGS      ?= ./...
BIN       ?= bin/gitmesh
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
BENCHTIME ?= 3x
# make run's addresses and state dir (internal/readmetest moves them off the
# defaults, so it never meets a make run a developer left going)
RUN_XDS_ADDR  ?= 127.0.0.1:15010
RUN_HTTP_ADDR ?= 127.0.0.1:15014
RUN_STATE_DIR ?= .gitmesh-state

# make image's tag and target architecture
IMAGE      ?= ghcr.io/gitmesh/gitmesh:$(VERSION)
IMAGE_ARCH ?= $(shell $(GO) env GOARCH)

.PHONY: all build test race lint vet fmt bench run demo loadtest fuzz golden tidy clean image

all: lint test build

## build: compile the gitmesh binary into bin/
build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/gitmesh

## image: an OCI image tarball (bin/gitmesh-image.tar) without a Docker engine
# A static linux binary (CGO_ENABLED=0) in one layer on an empty base, run as
# uid 65532, entrypoint gitmesh, command serve (internal/ociimage; deploy/Dockerfile
# builds the same). Load it with docker load, podman load or
# kind load image-archive.
image:
	CGO_ENABLED=0 GOOS=linux GOARCH=$(IMAGE_ARCH) $(GO) build -trimpath -ldflags '$(LDFLAGS) -s -w' -o bin/linux-$(IMAGE_ARCH)/gitmesh ./cmd/gitmesh
	$(GO) run ./cmd/mkimage -binary bin/linux-$(IMAGE_ARCH)/gitmesh -arch $(IMAGE_ARCH) -version $(VERSION) -tag $(IMAGE) -o bin/gitmesh-image.tar

## test: run every test (unit, golden, end-to-end on loopback)
# Tests that need what this machine may lack skip loudly, append the skip to
# the file a GITMESH_*_SKIP_LOG variable names, and make test ends with one
# line per kind that was skipped (go test hides a passing package's skips):
# the Kubernetes tests without etcd and kube-apiserver (internal/kubetest),
# the capture netns test without root and iptables (internal/capture), the
# console's browser tests without chromium and the Prometheus tests without
# prometheus. CI sets GITMESH_REQUIRE_KUBE, _NETNS, _BROWSER and
# _PROMETHEUS=1, which turn each skip into a failure.
test:
	@skips=$$(mktemp -d "$${TMPDIR:-/tmp}/gitmesh-skips.XXXXXX"); \
	echo "$(GO) test -count=1 $(PKGS)"; \
	GITMESH_KUBE_SKIP_LOG=$$skips/kube GITMESH_NETNS_SKIP_LOG=$$skips/netns \
	GITMESH_BROWSER_SKIP_LOG=$$skips/browser GITMESH_PROMETHEUS_SKIP_LOG=$$skips/prometheus \
		$(GO) test -count=1 $(PKGS); rc=$$?; \
	if [ -s "$$skips/kube" ]; then \
		echo "make test: $$(sort -u "$$skips/kube" | wc -l | tr -d ' ') Kubernetes tests SKIPPED (no etcd/kube-apiserver): run bash internal/kubetest/build-kube-apiserver.sh and install etcd-server, then GITMESH_REQUIRE_KUBE=1 make test"; \
	fi; \
	if [ -s "$$skips/netns" ]; then \
		echo "make test: the capture netns test was SKIPPED ($$(head -n1 "$$skips/netns")): run it as root with iptables and iproute2, then GITMESH_REQUIRE_NETNS=1 make test"; \
	fi; \
	if [ -s "$$skips/browser" ]; then \
		echo "make test: $$(sort -u "$$skips/browser" | wc -l | tr -d ' ') console browser tests SKIPPED (no chromium): apt-get install chromium, then GITMESH_REQUIRE_BROWSER=1 make test"; \
	fi; \
	if [ -s "$$skips/prometheus" ]; then \
		echo "make test: $$(sort -u "$$skips/prometheus" | wc -l | tr -d ' ') Prometheus tests SKIPPED (no prometheus): apt-get install prometheus, then GITMESH_REQUIRE_PROMETHEUS=1 make test"; \
	fi; \
	rm -rf "$$skips"; exit $$rc

## race: the tests under the race detector (slower)
race:
	$(GO) test -race -count=1 $(PKGS)

## lint: go vet, gofmt and go mod tidy must leave nothing to say
lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@$(GO) mod tidy -diff >/dev/null || { echo "go mod tidy would change go.mod/go.sum"; exit 1; }

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: load, check and render benchmarks with memory figures
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./schema/... ./policies/... ./render/...

## run: the main job: build bin/gitmesh, then serve the bookinfo example over xDS
# The build prints each package it compiles (-v), so the first run, which
# downloads the modules and compiles for minutes, shows progress; later runs
# compile nothing. exec hands Ctrl-C to gitmesh, which exits 0.
run:
	@echo "make run: building $(BIN) (the first build downloads modules and compiles for a few minutes; package names show progress)"
	$(GO) build -v -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/gitmesh
	@echo "make run: serving examples/bookinfo: xDS on $(RUN_XDS_ADDR), status on http://$(RUN_HTTP_ADDR) (Ctrl-C stops)"
	exec $(BIN) serve --dir examples/bookinfo --xds-insecure \
		--xds-addr $(RUN_XDS_ADDR) --http-addr $(RUN_HTTP_ADDR) --state-dir $(RUN_STATE_DIR)

## loadtest: 1,000 services, 1,000 delta ADS streams; one JSON line of figures
loadtest:
	$(GO) run ./cmd/meshbench -services 1000 -streams 1000 -mode delta

## demo: a proxyless gRPC canary; edit examples/grpc-canary/mesh.cue and watch the split move
demo:
	bash scripts/demo.sh

## fuzz: fuzz the loader for a minute
fuzz:
	$(GO) test ./schema -run '^$$' -fuzz FuzzLoad -fuzztime 60s

## golden: rewrite render's golden files after an intended change
golden:
	$(GO) test ./render -update

tidy:
	$(GO) mod tidy

clean:
	rm -rf bin
