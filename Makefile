# tokenmeter — entry points. On a fresh Debian machine `make demo` and
# `make test` install what they need (Go toolchain via the Go proxy,
# ClickHouse via apt, Kafka via Maven Central) and start it under .local/.
# See deploy/local/*.sh for the knobs (CLICKHOUSE_ADDR, KAFKA_BROKERS, …).

SHELL := /bin/bash
.DEFAULT_GOAL := build

# Go able to build this module (installed under .local/go if needed); resolved
# once, on first use.
GO = $(eval GO := $$(or $$(shell deploy/local/ensure-go.sh),$$(error no Go toolchain: deploy/local/ensure-go.sh failed)))$(GO)

BENCH ?= .
BENCHTIME ?= 1s

.PHONY: generate build test fuzz soak demo bench bench-e2e lint vet clean services services-stop services-status help

generate: ## regenerate the Go of schemas/proto (protoc: Debian protobuf-compiler; protoc-gen-go: the version go.mod pins)
	GO=$(GO) schemas/proto/generate.sh

build: ## build bin/tokenmeter
	$(GO) build -o bin/tokenmeter ./cmd/tokenmeter

test: ## all tests against real ClickHouse + Kafka (started and stopped as needed)
	deploy/local/test.sh

demo: ## ClickHouse + tokenmeter on its embedded broker + load generator + summary
	deploy/local/demo.sh

fuzz: ## every fuzz target for FUZZTIME each (default 3s); make test runs them for 2s
	GO=$(GO) deploy/local/fuzz.sh

soak: ## tokenmeter run under good + hostile traffic, RSS sampled (ARGS=-duration 60s ...)
	$(GO) build -o bin/tokenmeter ./cmd/tokenmeter
	$(GO) run ./bench/soak -bin bin/tokenmeter $(ARGS)

bench: ## Go benchmarks (BENCH=regexp BENCHTIME=1s); whole-pipeline harness in bench/
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem ./...

bench-e2e: ## whole pipeline on real Kafka + ClickHouse: throughput, latency, Kafka-engine comparison (ARGS=...)
	GO=$(GO) bench/e2e/run.sh $(ARGS)

lint: vet ## static checks
vet:
	$(GO) vet ./...

services: ## start ClickHouse and Kafka and leave them running; prints their env
	deploy/local/clickhouse.sh start
	deploy/local/kafka.sh start
	@deploy/local/clickhouse.sh env; deploy/local/kafka.sh env

services-stop: ## stop the ClickHouse and Kafka that deploy/local started
	deploy/local/kafka.sh stop
	deploy/local/clickhouse.sh stop

services-status:
	-deploy/local/clickhouse.sh status
	-deploy/local/kafka.sh status

clean: ## remove build output (services and .local state are kept; see services-stop)
	rm -rf bin/
	rm -f *.test *.out *.prof

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 18
