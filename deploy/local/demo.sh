#!/usr/bin/env bash
# `make demo`: the main job on one machine.
#
# ClickHouse (CLICKHOUSE_ADDR if it answers, else local; see clickhouse.sh) +
# tokenmeter running every role on its embedded Kafka-protocol broker
# (127.0.0.1:9092, no Kafka needed), fed by the load generator for
# DEMO_DURATION (default 60s), then the summary. Stops tokenmeter (SIGTERM)
# and, if this run started it, ClickHouse on every exit path; DEMO_KEEP=1
# leaves both running for a look around (Ctrl-C / SIGTERM still stop them).
#
# Every run starts fresh: the embedded broker's data (.local/embedded-kafka)
# is removed and, when the ClickHouse is the project-local one, the demo
# database is dropped, so the budget thresholds are crossed (and alerted)
# again. DEMO_KEEP_DATA=1 keeps both. A webhook receiver on 127.0.0.1:9099
# (the demo budgets' webhook URL) logs the alert deliveries.
#
# Env: DEMO_CONFIG (default pipelines/demo.yaml), DEMO_DURATION, DEMO_RATE
# (loadgen calls/s), DEMO_KEEP, DEMO_KEEP_DATA.
set -euo pipefail
TM_SCRIPT=demo
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TM_ROOT"

CONFIG=${DEMO_CONFIG:-pipelines/demo.yaml}
DURATION=${DEMO_DURATION:-60s}
STATE="$TM_LOCAL/demo"
CH_PIDFILE="$TM_LOCAL/clickhouse/clickhouse-server.pid"
mkdir -p "$STATE"
# The demo runs on the embedded broker; a KAFKA_BROKERS in the environment
# would override the config's empty broker list.
unset KAFKA_BROKERS

GO=$("$TM_ROOT/deploy/local/ensure-go.sh")
PATH="$(dirname "$GO"):$PATH"
export PATH

ch_started=0
tm_pid=
hook_pid=
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$hook_pid" ]; then
		kill -TERM "$hook_pid" 2>/dev/null || true
		wait "$hook_pid" 2>/dev/null || true
	fi
	if [ -n "${fake_pid:-}" ]; then
		kill -TERM "$fake_pid" 2>/dev/null || true
		wait "$fake_pid" 2>/dev/null || true
	fi
	if [ -n "$tm_pid" ] && kill -0 "$tm_pid" 2>/dev/null; then
		tm_log "stopping tokenmeter (pid $tm_pid)"
		kill -TERM "$tm_pid" 2>/dev/null || true
		for _ in $(seq 1 150); do
			kill -0 "$tm_pid" 2>/dev/null || break
			sleep 0.2
		done
		if kill -0 "$tm_pid" 2>/dev/null; then
			tm_log "tokenmeter did not stop within 30s of SIGTERM; killing it"
			kill -KILL "$tm_pid" 2>/dev/null || true
		fi
		wait "$tm_pid" 2>/dev/null || true
	fi
	if [ "$ch_started" = 1 ] && tm_pid_alive "$CH_PIDFILE"; then
		"$TM_ROOT/deploy/local/clickhouse.sh" stop || true
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Recorded before starting so a signal during start-up still stops it; stop
# touches only our pid file's process.
tm_pid_alive "$CH_PIDFILE" || ch_started=1
"$TM_ROOT/deploy/local/clickhouse.sh" start
eval "$("$TM_ROOT/deploy/local/clickhouse.sh" env)"

tm_log "building bin/tokenmeter"
go build -o bin/tokenmeter ./cmd/tokenmeter

if [ "${DEMO_KEEP_DATA:-0}" != 1 ]; then
	tm_log "fresh demo state (DEMO_KEEP_DATA=1 keeps it): removing .local/embedded-kafka"
	rm -rf "$TM_LOCAL/embedded-kafka"
	if tm_pid_alive "$CH_PIDFILE"; then
		tm_split_addr "$CLICKHOUSE_HTTP_ADDR" ch_host ch_port
		db=$(sed -n '/^clickhouse:/,/^[^ #]/s/^ *database: *\([A-Za-z0-9_]*\).*/\1/p' "$CONFIG" | head -n1)
		tm_log "dropping database ${db:-tokenmeter} on the project-local ClickHouse"
		tm_http_post "$ch_host" "$ch_port" / "DROP DATABASE IF EXISTS ${db:-tokenmeter} SYNC" >/dev/null ||
			tm_die "could not drop the demo database"
	fi
fi

tm_log "bin/tokenmeter migrate $CONFIG"
bin/tokenmeter migrate "$CONFIG"

# Port of http.listen in the config (":8080" or "host:8080"), for readiness.
http_port=$(sed -n '/^http:/,/^[^ #]/s/^ *listen: *"\{0,1\}[^:"]*:\([0-9]*\).*/\1/p' "$CONFIG" | head -n1)
http_port=${http_port:-8080}
if tm_port_open 127.0.0.1 "$http_port"; then
	tm_die "port $http_port is already in use (another tokenmeter?); stop it first"
fi

if tm_port_open 127.0.0.1 9099; then
	tm_log "port 9099 is in use: not starting the demo webhook receiver"
else
	tm_log "bin/tokenmeter webhook-receiver --listen 127.0.0.1:9099 (log: $STATE/webhooks.log)"
	bin/tokenmeter webhook-receiver --listen 127.0.0.1:9099 >"$STATE/webhooks.log" 2>&1 &
	hook_pid=$!
fi

# The demo's stand-in for the provider APIs behind the metering gateway.
# Started when the config's gateway points its OpenAI upstream at a loopback port.
fake_pid=
fake_addr=$(sed -n '/^gateway:/,/^[^ #]/s#^ *openai: *{ *url: *"\{0,1\}http://\(127\.0\.0\.1:[0-9]*\).*#\1#p' "$CONFIG" | head -n1)
if [ -n "$fake_addr" ]; then
	if tm_port_open 127.0.0.1 "${fake_addr##*:}"; then
		tm_die "port ${fake_addr##*:} (the demo's fake provider) is already in use; stop it first"
	fi
	tm_log "bin/tokenmeter fake-provider --listen $fake_addr (the provider APIs behind the gateway)"
	bin/tokenmeter fake-provider --listen "$fake_addr" >"$STATE/fake-provider.log" 2>&1 &
	fake_pid=$!
fi

tm_log "bin/tokenmeter run $CONFIG (log: $STATE/tokenmeter.log)"
bin/tokenmeter run "$CONFIG" >"$STATE/tokenmeter.log" 2>&1 &
tm_pid=$!

start=$SECONDS
until [ "$(tm_http_status 127.0.0.1 "$http_port" /readyz)" = 200 ]; do
	if ! kill -0 "$tm_pid" 2>/dev/null; then
		tail -n 30 "$STATE/tokenmeter.log" >&2 || true
		tm_pid=
		tm_die "tokenmeter run exited during start-up (log: $STATE/tokenmeter.log)"
	fi
	if [ $((SECONDS - start)) -ge "${DEMO_READY_TIMEOUT:-60}" ]; then
		tail -n 30 "$STATE/tokenmeter.log" >&2 || true
		tm_die "tokenmeter not ready on :$http_port/readyz within ${DEMO_READY_TIMEOUT:-60}s (log: $STATE/tokenmeter.log)"
	fi
	sleep 0.5
done
tm_log "tokenmeter ready in $((SECONDS - start))s (http://127.0.0.1:$http_port)"

# A few months of history first (past event times), so the board pack has a quarter to tell.
"$TM_ROOT/deploy/local/demo-story.sh" history "$CONFIG"

rate=()
[ -z "${DEMO_RATE:-}" ] || rate=(--rate "$DEMO_RATE")
tm_log "bin/tokenmeter loadgen --config $CONFIG --duration $DURATION ${rate[*]}"
bin/tokenmeter loadgen --config "$CONFIG" --duration "$DURATION" "${rate[@]}"

# Let the sink flush what is in flight before asking ClickHouse.
sleep "${DEMO_SETTLE_SECONDS:-5}"
tm_log "bin/tokenmeter summary $CONFIG"
bin/tokenmeter summary "$CONFIG"

# Where the enforced budget ended: its calls went through the gateway, so it stays within
# its amount (docs/gateway.md states the bound).
tm_log "enforced budget acme-legal-research after the run (GET /v1/budgets/acme-legal-research):"
curl -s -H "Authorization: Bearer ${DEMO_TOKEN:-demo-acme-token}" "http://127.0.0.1:$http_port/v1/budgets/acme-legal-research" |
	grep -oE '"(amount|spent|reserved|used_percent|events)":"?[^",]*"?' | tr '\n' ' ' >&2 || true
echo >&2

# What a gateway would hear now for the enforced legal-research budget (deny once it is spent).
tm_log "a gateway asks the decision API before a legal-research call (bin/tokenmeter budget-check):"
bin/tokenmeter budget-check -api "http://127.0.0.1:$http_port" -token "${DEMO_TOKEN:-demo-acme-token}" \
	-workflow legal-research -provider anthropic -model claude-sonnet-4-5 -input-tokens 20000 -output-tokens 2000 || true

if [ -n "$hook_pid" ]; then
	tm_log "alert webhooks received and verified (from $STATE/webhooks.log):"
	grep -v '^webhook-receiver: listening' "$STATE/webhooks.log" >&2 || tm_log "  (none)"
fi

# The CFO's view: calibrate and approve the plan, reconcile next year's, write the board pack.
"$TM_ROOT/deploy/local/demo-story.sh" cfo "$CONFIG"

# Procurement (docs/procurement.md): vendor offers replayed on the last three full months of
# metered Anthropic usage (the history) and on scaled-actual scenarios for the next 12 months;
# then a sample bill reconciled to the cent.
month1=$(date -u +%Y-%m-01)
win_from=$(date -u -d "$month1 -3 month" +%Y-%m)
win_to=$(date -u -d "$month1 -1 month" +%Y-%m)
term_from=$(date -u -d "$month1 +1 month" +%Y-%m)
term_to=$(date -u -d "$month1 +12 month" +%Y-%m)
tm_log "bin/tokenmeter contracts simulate -config $CONFIG -window $win_from:$win_to -term $term_from:$term_to pipelines/procurement/offers.yaml"
bin/tokenmeter contracts simulate -config "$CONFIG" -window "$win_from:$win_to" -term "$term_from:$term_to" \
	-csv "$STATE/offers-sheet.csv" pipelines/procurement/offers.yaml || true
tm_log "bin/tokenmeter bill reconcile (sample bills in pipelines/procurement/bills, every gap seeded with a cause)"
bin/tokenmeter bill reconcile -config "$CONFIG" -bills pipelines/procurement/bills/bill.yaml \
	-metered pipelines/procurement/bills/metered.csv -evidence pipelines/procurement/bills/evidence.csv || true

if [ "${DEMO_KEEP:-0}" = 1 ]; then
	tm_log "DEMO_KEEP=1: tokenmeter (pid $tm_pid) keeps running on :$http_port; Ctrl-C stops it"
	wait "$tm_pid"
fi
