# The verbs people use: run, test, bench, jobs, lint.
GO      ?= go
BIN     := bin/tabreduce
ADDR    ?= 127.0.0.1:8080
DATA    ?= ./data
REDIS_ADDR ?= 127.0.0.1:6380
# Go reactors are jobs/<name>/main.go; Go commands jobs/<name>-cmd/main.go;
# C commands jobs/<name>/main.c, built only where clang is (make
# wasm-toolchains installs it).
CMD_DIRS := $(patsubst jobs/%/main.go,%,$(wildcard jobs/*-cmd/main.go))
JOB_DIRS := $(filter-out $(CMD_DIRS),$(patsubst jobs/%/main.go,%,$(wildcard jobs/*/main.go)))
C_DIRS   := $(if $(shell command -v clang 2>/dev/null),$(patsubst jobs/%/main.c,%,$(wildcard jobs/*/main.c)))
# AssemblyScript reactors are jobs/<name>/assembly/index.ts, built only
# where npm is, by the asc their package-lock.json pins.
AS_DIRS  := $(if $(shell command -v npm 2>/dev/null),$(patsubst jobs/%/assembly/index.ts,%,$(wildcard jobs/*/assembly/index.ts)))
JOB_WASM := $(patsubst %,jobs/%.wasm,$(JOB_DIRS) $(CMD_DIRS) $(C_DIRS) $(AS_DIRS))
# Each module's brotli and gzip forms, made once here and embedded with it.
JOB_ENC  := $(JOB_WASM:.wasm=.wasm.br) $(JOB_WASM:.wasm=.wasm.gz)

.PHONY: all build run test bench bench-redis bench-outside jobs lint fuzz clean chromium wasm-toolchains redis wrk

all: build

# Job modules: each jobs/<name>/ is a wasip1 reactor built to jobs/<name>.wasm
# and embedded in the binary as a built-in, with its compressed forms. Each
# is started here, once (wasm/preinit): the module a host gets has
# the Go runtime's start done already.
jobs: $(JOB_WASM) $(JOB_ENC)

jobs/%.wasm: jobs/%/*.go $(wildcard wasm/mr/*.go) $(wildcard wasm/abi/*.go) $(wildcard wasm/internal/*/*.go) $(wildcard wasm/preinit/*.go)
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -ldflags='-s -w' -o $@ ./jobs/$*
	$(GO) run ./wasm/preinit/snapshot $@

$(patsubst %,jobs/%.wasm,$(CMD_DIRS)): jobs/%.wasm: jobs/%/main.go
	GOOS=wasip1 GOARCH=wasm $(GO) build -ldflags='-s -w' -o $@ ./jobs/$*

$(patsubst %,jobs/%.wasm,$(C_DIRS)): jobs/%.wasm: jobs/%/main.c
	clang --target=wasm32-wasi -O2 -Wl,--strip-all -o $@ $<

$(patsubst %,jobs/%.wasm,$(AS_DIRS)): jobs/%.wasm: jobs/%/assembly/index.ts jobs/%/asconfig.json jobs/%/node_modules/.package-lock.json
	cd jobs/$* && node_modules/.bin/asc assembly/index.ts --config asconfig.json --target release --outFile ../$*.wasm

# npm ci installs exactly what package-lock.json says.
jobs/%/node_modules/.package-lock.json: jobs/%/package-lock.json
	cd jobs/$* && npm ci --no-audit --no-fund --loglevel=error

jobs/%.wasm.br jobs/%.wasm.gz &: jobs/%.wasm
	$(GO) run ./wasm/modenc/precompress $<

# `tabreduce --version` shows these.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)

build: jobs
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/tabreduce

run: build
	$(BIN) serve --addr $(ADDR) --redis-addr $(REDIS_ADDR) --data $(DATA) --local-workers 1

# The browser tests (static/) drive Debian's chromium; install it when it
# is missing (CI runs as root with no stdin).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "installing chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The C jobs and their tests need clang, lld and wasi-libc from Debian;
# install them when they are missing, as for chromium.
wasm-toolchains:
	@command -v clang >/dev/null 2>&1 && test -d /usr/include/wasm32-wasi || { \
		echo "installing clang, lld and wasi-libc for the C jobs"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			clang lld wasi-libc libclang-rt-14-dev-wasm32 >/dev/null; }

# jobs is made by a sub-make, after the toolchains are there: which C jobs
# to build is decided when a make starts.
# The Redis store's tests run real redis-server processes and clusters,
# the Redis-protocol tests drive Debian's redis-cli, and the benchmarks
# compare with Debian's redis-server; install them when they are missing.
redis:
	@command -v redis-cli >/dev/null 2>&1 && command -v redis-server >/dev/null 2>&1 || { \
		echo "installing redis-server and redis-tools for the Redis-protocol tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null; }

# The outside load benchmarks drive the server with Debian's wrk.
wrk:
	@command -v wrk >/dev/null 2>&1 || { \
		echo "installing wrk for the load benchmarks"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

test: chromium wasm-toolchains redis
	$(MAKE) jobs
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 9m ./...

bench: build redis wrk
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

# redis-benchmark against our Redis port and Debian's redis-server (AOF,
# fsync every second), alternated in one run; the ratios are
# docs/BENCHMARKS.md's.
bench-redis: redis
	$(GO) test -run '^$$' -bench RedisBenchmark -benchtime 1x ./cmd/tabreduce

# wrk (push, hard get) against redis-benchmark (LPUSH, RPOP) at 16 and 64
# connections, with each server's CPU and context switches per request;
# BASE=path/to/older/tabreduce measures an older binary beside this one.
bench-outside: redis wrk
	TABREDUCE_BENCH_BASE=$(BASE) $(GO) test -run '^$$' -bench OutsideLoad -benchtime 1x -timeout 30m ./cmd/tabreduce

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

# Each fuzzer briefly (FUZZTIME each); what they find lands in the
# package's testdata/fuzz/ and runs with every go test. Minimizing each new
# input is capped, or it can take most of a short run.
FUZZTIME ?= 20s
FUZZ_TARGETS := \
	./server/broker:FuzzCheckQueueName ./server/broker:FuzzCheckInternalQueueName ./server/broker:FuzzParseKey ./server/broker:FuzzKeyRoundTrip \
	./server/buntstore:FuzzRecordRoundTrip ./server/buntstore:FuzzDecodeRecord ./server/buntstore:FuzzEntryIDs \
	./server/httpapi:FuzzParseBatch ./server/httpapi:FuzzBatchRoundTrip ./server/httpapi:FuzzParseProtocolCmd \
	./server/httpapi:FuzzReadMessage ./server/httpapi:FuzzOriginAllowed ./server/httpapi:FuzzSSEEvent \
	./server/httpapi:FuzzHostAllowed ./server/httpapi:FuzzFrameAncestors ./server/httpapi:FuzzFastParse ./server/httpapi:FuzzLeaseJSON \
	./server/buntstore:FuzzDecodeMeta ./wasm/workerproto:FuzzDecode \
	./wasm/abi:FuzzDecodePairs ./wasm/abi:FuzzDecodeGroups ./wasm/abi:FuzzDecodeResult \
	./jobs/wordcount:FuzzScanWords ./jobs/kmeans:FuzzParseFloat ./jobs/kmeans:FuzzParseDecimal ./jobs/kmeans:FuzzScanPoint ./jobs/kmeans:FuzzAssign ./jobs/kmeans:FuzzKmeansC \
	./wasm/modenc:FuzzAccept ./server/engine:FuzzParseMapTask \
	./server:FuzzHTTP ./cmd/tabreduce:FuzzParseByteSize \
	./server/kv:FuzzParseJSON ./server/resp:FuzzReadRequest \
	./server/redisstore:FuzzDecodePart ./server/redisstore:FuzzDecodeEvents ./server/redisstore:FuzzParseLeaseID

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "== $${t#*:} ($${t%%:*})"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $${t%%:*}; \
	done

clean:
	rm -rf bin $(JOB_WASM) $(JOB_ENC)
