#!/usr/bin/env bash
# Gateway overhead: fake provider, tokenmeter (budget + processor + gateway
# on the embedded broker) and the load client as three processes on
# loopback; the same load direct and through the gateway at each rate.
#
#   bench/gateway/run.sh [RATES] [DURATION]     default "1000 5000" 5s
#
# With KAFKA_BROKERS set, the gateway process runs the budget and gateway
# roles only and a second tokenmeter runs the processor, so the CPU per call
# is the gateway's (check + reserve, proxy, settle, produce, and the budget
# role accounting the priced event); without, one process runs everything
# on the embedded broker (whose CPU is then included).
#
# Ports: 40610 (provider), 40611 (tokenmeter API), 40612 (gateway), 40613 (broker);
# override with GW_BENCH_PORT_BASE.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
RATES=${1:-"1000 5000"}
DUR=${2:-5s}
base=${GW_BENCH_PORT_BASE:-40610}
prov=127.0.0.1:$base api=127.0.0.1:$((base + 1)) gw=127.0.0.1:$((base + 2)) broker=127.0.0.1:$((base + 3))
GO=${GO:-go}
out=$(mktemp -d)
$GO build -o "$out/tokenmeter" ./cmd/tokenmeter
$GO build -o "$out/gwbench" ./bench/gateway
if [ -n "${KAFKA_BROKERS:-}" ]; then
	roles="[budget, gateway]"
	kafka="kafka: {brokers: [${KAFKA_BROKERS}], client_id: gw-bench, topics: {partitions: 3, retention: 2232h}}"
else
	roles="[budget, processor, gateway]"
	kafka="kafka: {embedded: {listen: \"$broker\", data_dir: \"$out/kafka\"}, topics: {partitions: 3, retention: 2232h}}"
fi
cat >"$out/pipeline.yaml" <<YAML
roles: $roles
http: {listen: "$api"}
$kafka
telemetry: {log_level: warn}
tenants:
  - {id: acme, reporting_currency: HKD, time_zone: Asia/Hong_Kong, token_sha256: ["$(printf bench-token | sha256sum | cut -d' ' -f1)"]}
pricing:
  catalogues: [$PWD/pipelines/prices/catalogue.yaml]
  fx: $PWD/internal/gateway/testdata/fx.csv
processor: {transactional_id: gw-bench-processor}
budget:
  budgets:
    - {id: acme-legal, tenant: acme, scope: {workflow: legal-research}, amount: "1000000", mode: enforce}
    - {id: acme-all, tenant: acme, amount: "1000000"}
gateway:
  listen: "$gw"
  openai: {url: "http://$prov"}
  anthropic: {url: "http://$prov"}
  keys:
    - {name: bench, key: bench-gateway-key-000001, tenant: acme, workflow: legal-research, team: legal}
YAML
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$out"; }
trap cleanup EXIT
"$out/gwbench" provider -listen "$prov" &
pids+=($!)
"$out/tokenmeter" run "$out/pipeline.yaml" 2>"$out/tokenmeter.log" &
tm=$!
pids+=($tm)
if [ -n "${KAFKA_BROKERS:-}" ]; then
	sed -e 's/^roles: .*/roles: [processor]/' -e "s/listen: \"$api\"/listen: \"127.0.0.1:$((base + 4))\"/" \
		-e '/^gateway:/,$d' "$out/pipeline.yaml" >"$out/processor.yaml"
	"$out/tokenmeter" run "$out/processor.yaml" 2>"$out/processor.log" &
	pids+=($!)
fi
for _ in $(seq 1 200); do
	curl -sf "http://$api/readyz" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -sf "http://$api/readyz" >/dev/null || { cat "$out/tokenmeter.log"; exit 1; }
# Warm up connections and code paths.
"$out/gwbench" load -url "http://$gw" -rate 200 -duration 1s >/dev/null
"$out/gwbench" load -url "http://$prov" -rate 200 -duration 1s >/dev/null
for r in $RATES; do
	"$out/gwbench" load -url "http://$prov" -rate "$r" -duration "$DUR"
	"$out/gwbench" load -url "http://$gw" -rate "$r" -duration "$DUR" -pid "$tm"
done
grep -ciE 'level=(error)' "$out/tokenmeter.log" | sed 's/^/tokenmeter error log lines: /'
