#!/usr/bin/env bash
# `make test`: every test in the module against real services.
#
# Starts ClickHouse and Kafka unless CLICKHOUSE_ADDR / KAFKA_BROKERS (or ones
# already running on the default ports) answer, exports their addresses and
# TOKENMETER_REQUIRE_SERVICES=1 (so integration tests fail instead of
# skipping), runs go vet and go test, and stops on every exit path exactly
# the services this run started. Exit status: the tests' status, else vet's.
#
# Env: GO_TEST_FLAGS (extra flags, e.g. "-run TestSink -v"), GO_TEST_PKGS
# (default ./...), TEST_TIMEOUT (go test -timeout, default 25m), FUZZTIME
# (per fuzz target, default 2s; 0 skips; only when GO_TEST_PKGS is unset).
set -euo pipefail
TM_SCRIPT="test"
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TM_ROOT"

GO=$("$TM_ROOT/deploy/local/ensure-go.sh")
PATH="$(dirname "$GO"):$PATH"
export PATH

started=()
cleanup() {
	local rc=$? i
	trap - EXIT INT TERM
	for ((i = ${#started[@]} - 1; i >= 0; i--)); do
		# name:pidfile; nothing to do if start reused someone else's server.
		if tm_pid_alive "${started[i]#*:}"; then
			"$TM_ROOT/deploy/local/${started[i]%%:*}.sh" stop || true
		fi
	done
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_service NAME PIDFILE: start NAME; stop it on exit unless it was
# already running from our pid file. Recorded before starting, so a signal
# during start-up still stops it (stop touches only our pid file's process,
# so nothing happens if start reused someone else's server).
start_service() {
	local name=$1 pidfile=$2
	tm_pid_alive "$pidfile" || started+=("$name:$pidfile")
	"$TM_ROOT/deploy/local/$name.sh" start
}

t0=$SECONDS
mkdir -p "$TM_LOCAL"
tm_log "go mod download (in the background)"
go mod download >"$TM_LOCAL/go-mod-download.log" 2>&1 &
mod_pid=$!

tm_log "Debian test tools: strace, chromium, poppler-utils, nginx (deploy/local/tools.sh)"
"$TM_ROOT/deploy/local/tools.sh" ensure >"$TM_LOCAL/tools.log" 2>&1 || { cat "$TM_LOCAL/tools.log" >&2; tm_die "installing the test tools failed"; }
tm_log "Python test tooling (tests/python/*, in the background)"
"$TM_ROOT/deploy/local/python.sh" ensure-all >"$TM_LOCAL/python.log" 2>&1 &
py_pid=$!
export TOKENMETER_VENV_DIR="$TM_LOCAL"

# tools.sh installed chromium and poppler: the board pack's render test must run, not skip.
export TOKENMETER_REQUIRE_BROWSER=1

start_service clickhouse "$TM_LOCAL/clickhouse/clickhouse-server.pid"
start_service kafka "$TM_LOCAL/kafka/kafka.pid"
eval "$("$TM_ROOT/deploy/local/clickhouse.sh" env)"
eval "$("$TM_ROOT/deploy/local/kafka.sh" env)"
export TOKENMETER_REQUIRE_SERVICES=1

if ! wait "$mod_pid"; then
	cat "$TM_LOCAL/go-mod-download.log" >&2
	tm_die "go mod download failed"
fi
if ! wait "$py_pid"; then
	cat "$TM_LOCAL/python.log" >&2
	tm_die "Python test tooling failed to install"
fi
tm_log "ready in $((SECONDS - t0))s: CLICKHOUSE_ADDR=$CLICKHOUSE_ADDR CLICKHOUSE_HTTP_ADDR=$CLICKHOUSE_HTTP_ADDR KAFKA_BROKERS=$KAFKA_BROKERS"

vet_rc=0
tm_log "go vet ./..."
go vet ./... || vet_rc=$?

test_rc=0
tm_log "go test -count=1 -p 2 -timeout ${TEST_TIMEOUT:-25m} ${GO_TEST_FLAGS:-} ${GO_TEST_PKGS:-./...}"
# shellcheck disable=SC2086
go test -count=1 -p 2 -timeout "${TEST_TIMEOUT:-25m}" ${GO_TEST_FLAGS:-} ${GO_TEST_PKGS:-./...} || test_rc=$?

# Every fuzz target for FUZZTIME (default 2s) each on fresh random input:
# the hostile-input suite beyond the seed corpora go test ran above.
fuzz_rc=0
if [ -z "${GO_TEST_PKGS:-}" ]; then
	tm_log "fuzz targets, ${FUZZTIME:-2s} each (FUZZTIME=0 skips)"
	GO="$GO" FUZZTIME="${FUZZTIME:-2s}" "$TM_ROOT/deploy/local/fuzz.sh" || fuzz_rc=$?
fi
[ "$test_rc" != 0 ] || test_rc=$fuzz_rc

if [ "$test_rc" != 0 ] && [ "${CI:-}" = true ]; then
	tm_log "tests failed; last service log lines:"
	tail -n 30 "$TM_LOCAL/clickhouse/log/clickhouse-server.err.log" >&2 2>/dev/null || true
	grep -E '\] (ERROR|FATAL) ' "$TM_LOCAL/kafka/logs/server.log" 2>/dev/null | tail -n 30 >&2 || true
fi
tm_log "done in $((SECONDS - t0))s: go vet exit $vet_rc, go test exit $test_rc"
[ "$test_rc" = 0 ] || exit "$test_rc"
exit "$vet_rc"
