# The verbs people use: run, test, bench, jobs, lint.
GO      ?= go
BIN     := bin/tabreduce
ADDR    ?= 127.0.0.1:8080
DATA    ?= ./data
JOB_DIRS := $(patsubst jobs/%/main.go,%,$(wildcard jobs/*/main.go))
JOB_WASM := $(patsubst %,jobs/%.wasm,$(JOB_DIRS))

.PHONY: all build run test bench jobs lint fuzz clean

all: build

# Job modules: each jobs/<name>/ is a wasip1 reactor built to jobs/<name>.wasm
# and embedded in the binary as a built-in.
jobs: $(JOB_WASM)

jobs/%.wasm: jobs/%/*.go $(wildcard wasm/mr/*.go) $(wildcard wasm/abi/*.go)
	GOOS=wasip1 GOARCH=wasm $(GO) build -buildmode=c-shared -ldflags='-s -w' -o $@ ./jobs/$*

build: jobs
	$(GO) build -o $(BIN) ./cmd/tabreduce

run: build
	$(BIN) serve --addr $(ADDR) --data $(DATA)

test: jobs
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 9m ./...

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...

clean:
	rm -rf bin $(JOB_WASM)
