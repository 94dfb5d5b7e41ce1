# kinesis-ingest: `make demo` runs the embedded demo on local emulators,
# `make test` installs what the tests need and runs every test.
GO       ?= go
EMU_DIR  := internal/testenv/emulators
FUZZTIME ?= 2s

.PHONY: all build deps test-deps demo test race fuzz bench bench-wide

all: build

build:
	$(GO) build -o bin/kinesis-ingest ./cmd/kinesis-ingest
	$(GO) build -o bin/kinesis-ingest-demo ./cmd/kinesis-ingest-demo

# The lake's tests: Versity Gateway, a real S3 server over a local directory,
# built once (minutes) into a cache outside the tree that every clone and test
# run reuses (internal/testenv/s3test looks there); DuckDB, the independent
# Parquet reader the tests count rows with.
TOOLS_BIN ?= $(HOME)/.cache/kinesis-ingest/bin
VERSITYGW_VERSION := v1.8.0
DUCK_DIR  := internal/testenv/duckread

AVSC_DIR := decoders/avrodec/testdata/js

# npm packages pinned by package-lock.json files: the emulators (kinesis-mock,
# dynalite) and avsc, an independent Avro implementation the tests check the
# decoder against.
deps: $(EMU_DIR)/node_modules/.package-lock.json $(AVSC_DIR)/node_modules/.package-lock.json

# What only the tests need beyond deps: the lake's S3 server and reader. The
# demo does not wait minutes for a versitygw build it never starts.
test-deps: deps $(DUCK_DIR)/node_modules/.package-lock.json $(TOOLS_BIN)/versitygw

$(EMU_DIR)/node_modules/.package-lock.json: $(EMU_DIR)/package-lock.json
	cd $(EMU_DIR) && npm ci --no-audit --no-fund

$(AVSC_DIR)/node_modules/.package-lock.json: $(AVSC_DIR)/package-lock.json
	cd $(AVSC_DIR) && npm ci --no-audit --no-fund

$(TOOLS_BIN)/versitygw:
	mkdir -p $(TOOLS_BIN)
	GOBIN=$(TOOLS_BIN) $(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)

$(DUCK_DIR)/node_modules/.package-lock.json: $(DUCK_DIR)/package-lock.json
	cd $(DUCK_DIR) && npm ci --no-audit --no-fund

# DEMO_FLAGS: e.g. --keep (keep the emulators and the worker running until
# Ctrl-C), --verbose (every log line on stderr), --records N.
DEMO_FLAGS ?=
demo: deps
	$(GO) run ./cmd/kinesis-ingest-demo $(DEMO_FLAGS)

# Every test, integration tests against the real emulators included, each
# package once: those that share state between goroutines under the race
# detector (RACE_PKGS), the others without it; then a short fixed-time run
# of each fuzz target over its committed corpus. The worker tests
# (cmd/kinesis-ingest) mostly wait on leases, commits and emulators: 4 at a
# time took 532 s on 2 cores where 2 took 786 s. Running RACE_PKGS twice
# (with and without -race) made the suite 917 s, over its 15 minutes.
test: test-deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 40m -parallel 4 $(PLAIN_PKGS)
	$(MAKE) race
	$(MAKE) fuzz

# The race detector over the packages that share state between goroutines
# (shards deliver concurrently; the lease table is used by the KCL's goroutines;
# the lake's sinks commit from their own goroutines). The Iceberg table's file
# format and its catalog share nothing between goroutines of ours: left out.
RACE_PKGS = $(shell $(GO) list ./pipeline/... ./sinks/... ./consumers/... ./internal/service/health ./decoders/decompress | grep -v '/sinks/iceberg/\(catalog\|table\)$$')
PLAIN_PKGS = $(filter-out $(RACE_PKGS),$(shell $(GO) list ./...))
race:
	$(GO) test -race -count=1 -timeout 10m $(RACE_PKGS)

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./decoders/jsondec
	$(GO) test -run '^$$' -fuzz '^FuzzConvert$$' -fuzztime $(FUZZTIME) ./schema
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./decoders/avrodec
	$(GO) test -run '^$$' -fuzz '^FuzzDecompress$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./decoders/decompress
	$(GO) test -run '^$$' -fuzz '^FuzzSplit$$' -fuzztime $(FUZZTIME) ./decoders/cwlogs
	$(GO) test -run '^$$' -fuzz '^FuzzDynamoDBRead$$' -fuzztime $(FUZZTIME) ./cdc
	$(GO) test -run '^$$' -fuzz '^FuzzParseMetadata$$' -fuzztime $(FUZZTIME) ./sinks/iceberg/table
	$(GO) test -run '^$$' -fuzz '^FuzzDatetime$$' -fuzztime $(FUZZTIME) ./schema
	$(GO) test -run '^$$' -fuzz '^FuzzAppendFloat$$' -fuzztime $(FUZZTIME) ./sinks/jsonenc
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 2s ./consumers/getrecords

# The benchmarks, each printed as a Markdown table:
#  1. the hot path on one core (pipeline.BenchmarkHotPath: decode, validate,
#     route, file sink; PostgreSQL too when its server binaries are installed;
#     the lake's Parquet encoding without the upload, beside parquet-go alone)
#     with encoding/json-into-a-struct as the baseline in the same run;
#  2. end to end on the local emulators (internal/tools/bench/e2e): kinesis-ingest
#     run against a bare KCL consumer on the same 20,000 records, and again
#     writing the lake (the s3 sink's Parquet on versitygw, hence its build);
#  3. coordination (consumers/kcl.BenchmarkCoordination, ...Busy): lease-table read
#     units, scans, GetItems, ListShards and writes per second of idle workers, and
#     the checkpoint writes of busy ones, counted by proxies, beside the formula's
#     prediction and its projection;
#  4. per-shard cost (internal/tools/bench/pershard): an idle worker's memory,
#     goroutines, metric series, GetRecords calls and CPU at 8 and 64 shards,
#     as a fixed part plus a part per shard.
# Raw outputs go to $(BENCH_OUT). The tables show medians of BENCH_COUNT runs
# per hot-path case and of E2E_ROUNDS throughput runs per consumer.
BENCH_OUT   ?= bench-out
BENCH_COUNT ?= 3
E2E_ROUNDS  ?= 3
bench: deps $(TOOLS_BIN)/versitygw
	mkdir -p $(BENCH_OUT)
	$(GO) test -run '^$$' -bench '^BenchmarkHotPath$$' -benchmem -cpu 1 -count $(BENCH_COUNT) ./pipeline \
		| tee $(BENCH_OUT)/hotpath.txt | $(GO) run ./internal/tools/bench/table | tee $(BENCH_OUT)/hotpath.md
	$(GO) run ./internal/tools/bench/e2e -rounds $(E2E_ROUNDS) | tee $(BENCH_OUT)/e2e.md
	$(GO) test -run '^$$' -bench '^BenchmarkCoordination(Busy)?$$' -benchtime 1x ./consumers/kcl \
		| tee $(BENCH_OUT)/coordination.txt | grep -v '^\(goos\|goarch\|pkg\|cpu\|Benchmark\|PASS\|ok\)' | tee $(BENCH_OUT)/coordination.md
	$(GO) run ./internal/tools/bench/pershard | tee $(BENCH_OUT)/pershard.md

# The wide run (internal/tools/bench/wide): W real workers on S busy shards,
# time to lease, CPU and RSS per worker, a kill -9 taken over and counted by id,
# the lease table's calls beside the formulas. Not in `bench`: it runs for
# minutes at full width, and on 2 cores the emulators give out first (step
# down with WIDE_FLAGS="-shards 64 -workers 4").
WIDE_FLAGS ?= -shards 256 -workers 8
bench-wide: deps
	mkdir -p $(BENCH_OUT)
	$(GO) run ./internal/tools/bench/wide $(WIDE_FLAGS) | tee $(BENCH_OUT)/wide.md

# The end-to-end suite (cmd/kinesis-ingest) against endpoints someone else
# runs instead of the emulators it starts itself: LocalStack from
# docker-compose.yml (`docker compose up -d localstack` first) unless
# AWS_ENDPOINT_URL, or AWS_ENDPOINT_URL_KINESIS and AWS_ENDPOINT_URL_DYNAMODB,
# name others. Each test gets its own stream; tests that restart an emulator
# skip. See README "Run on LocalStack".
LOCALSTACK_ENDPOINT ?= http://localhost:4566
.PHONY: test-localstack
test-localstack: deps
	KINESIS_INGEST_EXTERNAL=1 AWS_ENDPOINT_URL="$${AWS_ENDPOINT_URL:-$(LOCALSTACK_ENDPOINT)}" \
		$(GO) test -count=1 -timeout 30m -v ./cmd/kinesis-ingest
