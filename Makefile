# kinesis-ingest: `make demo` runs the embedded demo on local emulators,
# `make test` installs what the tests need and runs every test.
GO       ?= go
EMU_DIR  := internal/emulators
FUZZTIME ?= 10s

.PHONY: all build deps demo test unit fuzz bench

all: build

build:
	$(GO) build -o bin/kinesis-ingest ./cmd/kinesis-ingest

AVSC_DIR := decoders/avrodec/testdata/js

# npm packages pinned by package-lock.json files: the emulators (kinesis-mock,
# dynalite) and avsc, an independent Avro implementation the tests check the
# decoder against.
deps: $(EMU_DIR)/node_modules/.package-lock.json $(AVSC_DIR)/node_modules/.package-lock.json

$(EMU_DIR)/node_modules/.package-lock.json: $(EMU_DIR)/package-lock.json
	cd $(EMU_DIR) && npm ci --no-audit --no-fund

$(AVSC_DIR)/node_modules/.package-lock.json: $(AVSC_DIR)/package-lock.json
	cd $(AVSC_DIR) && npm ci --no-audit --no-fund

demo: deps
	$(GO) run ./cmd/kinesis-ingest demo

# Every test, integration tests against the real emulators included, then a
# short fixed-time run of each fuzz target over its committed corpus.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...
	$(MAKE) fuzz

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./decoders/jsondec
	$(GO) test -run '^$$' -fuzz '^FuzzConvert$$' -fuzztime $(FUZZTIME) ./pipeline/schema
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./decoders/avrodec

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
