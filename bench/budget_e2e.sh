#!/usr/bin/env bash
# Budget end to end, on one machine: the demo pipeline (embedded broker, its
# own ports and ClickHouse database so it does not disturb a running demo),
# the webhook receiver failing every first attempt, one minute of demo load;
# then kill -9 and restart, and check that every alert exists exactly once in
# ClickHouse and that no webhook was delivered again.
#
#   bench/budget_e2e.sh            # needs ClickHouse at CLICKHOUSE_ADDR (default 127.0.0.1:9000, HTTP 8123)
#
# Env: E2E_DIR (default /tmp/tokenmeter-budget-e2e), E2E_DURATION (60s), E2E_PORT_BASE (28400).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=${E2E_DIR:-/tmp/tokenmeter-budget-e2e}
BASE=${E2E_PORT_BASE:-28400}
HTTP=127.0.0.1:$((BASE + 31)) KAFKA=127.0.0.1:$((BASE + 92)) OTLPG=127.0.0.1:$((BASE + 17)) OTLPH=127.0.0.1:$((BASE + 18)) HOOK=127.0.0.1:$((BASE + 99))
CHHTTP=${CLICKHOUSE_HTTP_ADDR:-127.0.0.1:8123}
DB=tm_budget_e2e
unset KAFKA_BROKERS
rm -rf "$DIR" && mkdir -p "$DIR"
go build -o "$DIR/tokenmeter" ./cmd/tokenmeter
# Relative paths in the config (prices/, attribution/, forecasts.csv) resolve against its directory.
for f in "$ROOT"/pipelines/*; do [ "$(basename "$f")" = demo.yaml ] || ln -s "$f" "$DIR/"; done
python3 - "$ROOT" "$DIR" "$HTTP" "$KAFKA" "$OTLPG" "$OTLPH" "$HOOK" "$DB" <<'EOF'
import sys, yaml
root, d, http, kafka, og, oh, hook, db = sys.argv[1:]
c = yaml.safe_load(open(root + '/pipelines/demo.yaml'))
c['http']['listen'] = http
c['kafka']['embedded'] = {'listen': kafka, 'data_dir': d + '/kafka'}
c['clickhouse']['database'] = db
# Budgets measured as the decision API sees them, without the demo's gateway and fake provider.
c['roles'] = [r for r in c.get('roles', []) if r != 'gateway'] or None
c.pop('gateway', None)
if c['roles'] is None: c.pop('roles')
c.setdefault('collector', {}).setdefault('otlp', {}).update({'grpc_listen': og, 'http_listen': oh})
for b in c['budget']['budgets']:
    for w in b.get('webhooks', []):
        w['url'] = w['url'].replace('127.0.0.1:9099', hook)
open(d + '/demo.yaml', 'w').write(yaml.safe_dump(c, sort_keys=False))
EOF
TM="$DIR/tokenmeter" CFG="$DIR/demo.yaml"
ch() { curl -sf "http://$CHHTTP/" --data-binary "$1"; }
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
ch "DROP DATABASE IF EXISTS $DB" >/dev/null
"$TM" migrate "$CFG" >/dev/null
"$TM" webhook-receiver --listen "$HOOK" --fail-first 1 >"$DIR/hooks.log" 2>&1 & pids+=($!)
"$TM" run "$CFG" >"$DIR/run1.log" 2>&1 & run=$!; pids+=($run)
until curl -sf "http://$HTTP/readyz" >/dev/null; do sleep 0.5; done
"$TM" loadgen -target "http://$HTTP" -otlp "$OTLPH" -otlp-grpc "$OTLPG" -duration "${E2E_DURATION:-60s}" "$CFG" >"$DIR/loadgen.log" 2>&1
sleep 5
status() { curl -s -H 'Authorization: Bearer demo-acme-token' "http://$HTTP/v1/budgets" | python3 -c '
import json, sys
for b in json.load(sys.stdin)["budgets"]:
    print("  %-24s %8s%%  spent %10s %-6s crossed %s" % (b["id"], b["used_percent"], round(float(b["spent"]), 2), b["currency"], ",".join(c["kind"][:4] + str(c["threshold"]) for c in b["thresholds_crossed"])))'; }
echo "budgets after the load:"; status
echo "a check on the enforce budget:"
curl -s -H 'Authorization: Bearer demo-acme-token' -d '{"workflow":"legal-research","estimated_cost":"1"}' "http://$HTTP/v1/budget/check"; echo
before=$(grep -c verified "$DIR/hooks.log" || true)
echo "kill -9 tokenmeter (pid $run) and restart"
kill -9 "$run"; wait "$run" 2>/dev/null || true
"$TM" run "$CFG" >"$DIR/run2.log" 2>&1 & run=$!; pids+=($run)
until curl -sf "http://$HTTP/readyz" >/dev/null; do sleep 0.5; done
sleep 5
echo "budgets after restart:"; status
after=$(grep -c verified "$DIR/hooks.log" || true)
read -r n u < <(ch "SELECT count(), uniqExact(alert_id) FROM $DB.alerts FORMAT TSV")
echo "alerts in ClickHouse: $n rows, $u distinct ids; webhook deliveries verified: $before before restart, $after after"
[ "$n" = "$u" ] && [ "$n" -gt 0 ] && [ "$before" = "$after" ] && echo OK || { echo FAIL; exit 1; }
