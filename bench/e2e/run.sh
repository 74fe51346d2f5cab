#!/usr/bin/env bash
# Whole-pipeline benchmark on the real services (see bench/e2e/main.go and the
# "End to end" section of bench/RESULTS.md). Extra arguments go to the Go
# program, e.g. `bench/e2e/run.sh -events 50000 -phases throughput`.
# Needs Kafka at KAFKA_BROKERS (default 127.0.0.1:19092) and ClickHouse at
# CLICKHOUSE_ADDR (native, default 127.0.0.1:9000) and CLICKHOUSE_HTTP (default 127.0.0.1:8123).
set -euo pipefail
cd "$(dirname "$0")/../.."
export KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:19092}
export CLICKHOUSE_ADDR=${CLICKHOUSE_ADDR:-127.0.0.1:9000}
echo "# $(date -u +%FT%TZ) nproc $(nproc), loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
exec ${GO:-go} run ./bench/e2e "$@"
