#!/usr/bin/env bash
# ClickHouse for tests and the demo.
#
#   clickhouse.sh start    use CLICKHOUSE_ADDR if it answers, else one already on
#                          127.0.0.1:9000, else install the current ClickHouse
#                          engine (26.7, libchdb.so from npm, pinned + checksummed)
#                          if missing and start our own (state in .local/clickhouse)
#   clickhouse.sh install  only install the engine and its launcher
#   clickhouse.sh stop     stop the server we started (pid file); never any other
#   clickhouse.sh status   exit 0 if a server answers at the address `env` prints
#   clickhouse.sh env      print `export CLICKHOUSE_ADDR=… CLICKHOUSE_HTTP_ADDR=…`
#
# Env: CLICKHOUSE_ADDR (native host:port), CLICKHOUSE_HTTP_ADDR (host:port),
#      CLICKHOUSE_START_TIMEOUT (seconds, default 90), CLICKHOUSE_LOCAL_PORT /
#      CLICKHOUSE_LOCAL_HTTP_PORT / CLICKHOUSE_LOCAL_INTERSERVER_PORT (ports of
#      our own server: 9000 / 8123 / 9009), TOKENMETER_LOCAL_DIR (state, .local),
#      TOKENMETER_CACHE_DIR (engine cache, ~/.cache/tokenmeter).
#
# For development and tests only: the engine is `clickhouse local` serving
# (no Keeper, so no Replicated tables). Production runs clickhouse-server.
set -euo pipefail
TM_SCRIPT=clickhouse
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Ports of the server we start ourselves; override to run a second instance.
LOCAL_TCP_PORT=${CLICKHOUSE_LOCAL_PORT:-9000}
LOCAL_HTTP_PORT=${CLICKHOUSE_LOCAL_HTTP_PORT:-8123}
LOCAL_INTERSERVER_PORT=${CLICKHOUSE_LOCAL_INTERSERVER_PORT:-9009}
STATE="$TM_LOCAL/clickhouse"
PIDFILE="$STATE/clickhouse-server.pid"
START_TIMEOUT="${CLICKHOUSE_START_TIMEOUT:-90}"

native_addr() { printf '%s' "${CLICKHOUSE_ADDR:-127.0.0.1:$LOCAL_TCP_PORT}"; }

http_addr() {
	if [ -n "${CLICKHOUSE_HTTP_ADDR:-}" ]; then
		printf '%s' "$CLICKHOUSE_HTTP_ADDR"
	else
		# Same host; our HTTP port when the native port is ours, else 8123.
		local h p
		tm_split_addr "$(native_addr)" h p
		if [ "$p" = "$LOCAL_TCP_PORT" ]; then p=$LOCAL_HTTP_PORT; else p=8123; fi
		printf '%s:%s' "$h" "$p"
	fi
}

# answers ADDR: true if a ClickHouse native port answers at ADDR. The native
# handshake is binary, so we check the TCP port and, where we can, HTTP /ping.
answers() {
	local h p hh hp
	tm_split_addr "$1" h p
	tm_port_open "$h" "$p" || return 1
	tm_split_addr "$(http_addr)" hh hp
	if tm_port_open "$hh" "$hp"; then
		[ "$(tm_http_get "$hh" "$hp" /ping)" = "Ok." ] || return 1
	fi
	return 0
}

render_config() {
	mkdir -p "$STATE/etc" "$STATE/data" "$STATE/tmp" "$STATE/log" "$STATE/user_files" "$STATE/format_schemas"
	local src="$TM_ROOT/deploy/local/clickhouse" f
	for f in config.xml users.xml; do
		sed -e "s|@ROOT@|$STATE|g" \
			-e "s|@TCP_PORT@|$LOCAL_TCP_PORT|g" \
			-e "s|@HTTP_PORT@|$LOCAL_HTTP_PORT|g" \
			-e "s|@INTERSERVER_PORT@|$LOCAL_INTERSERVER_PORT|g" \
			"$src/$f.tmpl" >"$STATE/etc/$f.new"
		mv "$STATE/etc/$f.new" "$STATE/etc/$f"
	done
}

# The engine: ClickHouse 26.7 as libchdb.so from the npm registry, pinned by
# version and by the sha256 of the package tarball, cached per machine (it is
# 566 MB unpacked) so every clone and worktree shares one copy.
CHDB_PACKAGE="@chdb/lib-linux-x64-gnu"
CHDB_VERSION="26.7.3-stable.1"
CHDB_SHA256="c0d32b129e988f2b9a9a31c9141aecf5e1e2453f9a079efc4d36ab8e3f92b2ad"
CHDB_DIR="${TOKENMETER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tokenmeter}/chdb-$CHDB_VERSION"
LAUNCHER="$CHDB_DIR/tokenmeter-clickhouse"

# install_engine: npm pack the pinned package, check its sha256, keep
# libchdb.so, and build the launcher (deploy/local/clickhouse/chserve.c)
# against it. Idempotent; a rebuilt launcher source rebuilds the launcher.
install_engine() {
	local src="$TM_ROOT/deploy/local/clickhouse/chserve.c"
	if [ -x "$LAUNCHER" ] && [ -s "$CHDB_DIR/libchdb.so" ] && [ "$LAUNCHER" -nt "$src" ]; then
		return 0
	fi
	mkdir -p "$CHDB_DIR"
	# Several worktrees may start at once: one installs, the others wait.
	exec 8>"$CHDB_DIR/.lock"
	flock 8
	if [ ! -s "$CHDB_DIR/libchdb.so" ]; then
		command -v npm >/dev/null 2>&1 || tm_apt_install nodejs npm
		local tmp
		tmp=$(mktemp -d "$CHDB_DIR/.pack.XXXXXX")
		tm_log "installing the ClickHouse engine: npm pack $CHDB_PACKAGE@$CHDB_VERSION (~180 MB)"
		(cd "$tmp" && npm pack --silent "$CHDB_PACKAGE@$CHDB_VERSION" >/dev/null) ||
			{ rm -rf "$tmp"; tm_die "npm pack $CHDB_PACKAGE@$CHDB_VERSION failed"; }
		local tgz sum
		tgz=$(ls "$tmp"/*.tgz)
		sum=$(sha256sum "$tgz" | cut -d' ' -f1)
		if [ "$sum" != "$CHDB_SHA256" ]; then
			rm -rf "$tmp"
			tm_die "$CHDB_PACKAGE@$CHDB_VERSION: sha256 $sum, expected $CHDB_SHA256; refusing to use it"
		fi
		tar -xzf "$tgz" -C "$tmp" package/libchdb.so
		mv "$tmp/package/libchdb.so" "$CHDB_DIR/libchdb.so"
		rm -rf "$tmp"
	fi
	if [ ! -x "$LAUNCHER" ] || [ "$src" -nt "$LAUNCHER" ]; then
		command -v gcc >/dev/null 2>&1 || tm_apt_install gcc libc6-dev
		gcc -O2 -o "$LAUNCHER.new" "$src" -L"$CHDB_DIR" -lchdb -Wl,-rpath,"$CHDB_DIR" ||
			tm_die "building the ClickHouse launcher failed"
		mv "$LAUNCHER.new" "$LAUNCHER"
	fi
	flock -u 8
	tm_log "ClickHouse engine $CHDB_VERSION ready in $CHDB_DIR"
}

# The query that starts the listeners and then keeps the engine serving: it
# holds one query slot (visible in system.processes) for about three years.
SERVE_QUERY="SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP; SELECT sleepEachRow(1) FROM numbers(100000000) SETTINGS max_block_size = 1 FORMAT Null"

start_own() {
	install_engine
	if tm_pid_alive "$PIDFILE"; then
		tm_log "our server (pid $(cat "$PIDFILE")) is running but not answering yet; waiting"
	else
		if tm_port_open 127.0.0.1 "$LOCAL_HTTP_PORT" || tm_port_open 127.0.0.1 "$LOCAL_TCP_PORT"; then
			tm_die "port $LOCAL_TCP_PORT or $LOCAL_HTTP_PORT on 127.0.0.1 is taken by something that is not a working ClickHouse; free it or set CLICKHOUSE_ADDR"
		fi
		render_config
		rm -f "$PIDFILE"
		tm_log "starting ClickHouse $CHDB_VERSION (data in $STATE)"
		# Own session (setsid) so Ctrl-C in the caller's terminal does not
		# reach it. Without job control a background job is not a process
		# group leader, so setsid execs in place and $! is the server's pid.
		(
			cd "$STATE"
			setsid "$LAUNCHER" --config-file="$STATE/etc/config.xml" --path="$STATE/data/" \
				--listen_host=127.0.0.1 --tcp_port="$LOCAL_TCP_PORT" --http_port="$LOCAL_HTTP_PORT" \
				--log-level=warning --query "$SERVE_QUERY" \
				</dev/null >>"$STATE/log/stdout.log" 2>>"$STATE/log/clickhouse-server.err.log" &
			echo $! >"$PIDFILE"
		)
		# Interrupted before it answers: do not leave a half-started server.
		trap 'tm_stop_pidfile "$PIDFILE" 10; exit 130' INT
		trap 'tm_stop_pidfile "$PIDFILE" 10; exit 143' TERM
	fi
	local start=$SECONDS
	# The engine prints errors and may keep running: ready means /ping
	# answers and the process is alive.
	while ! answers "127.0.0.1:$LOCAL_TCP_PORT"; do
		if [ $((SECONDS - start)) -ge "$START_TIMEOUT" ]; then
			tail -n 20 "$STATE/log/clickhouse-server.err.log" "$STATE/log/stdout.log" >&2 2>/dev/null || true
			tm_stop_pidfile "$PIDFILE" 10
			tm_die "ClickHouse did not answer on 127.0.0.1:$LOCAL_TCP_PORT within ${START_TIMEOUT}s (stopped it); logs in $STATE/log"
		fi
		if ! tm_pid_alive "$PIDFILE"; then
			tail -n 30 "$STATE/log/clickhouse-server.err.log" "$STATE/log/stdout.log" >&2 2>/dev/null || true
			tm_die "ClickHouse exited during start-up; logs in $STATE/log"
		fi
		sleep 0.2
	done
	tm_log "started; native 127.0.0.1:$LOCAL_TCP_PORT, HTTP 127.0.0.1:$LOCAL_HTTP_PORT ($((SECONDS - start))s)"
	trap - INT TERM
}

cmd_start() {
	if [ -n "${CLICKHOUSE_ADDR:-}" ]; then
		if answers "$CLICKHOUSE_ADDR"; then
			tm_log "using ClickHouse at $CLICKHOUSE_ADDR (CLICKHOUSE_ADDR)"
			return 0
		fi
		local h p
		tm_split_addr "$CLICKHOUSE_ADDR" h p
		if ! tm_is_local_host "$h" || [ "$p" != "$LOCAL_TCP_PORT" ]; then
			tm_die "CLICKHOUSE_ADDR=$CLICKHOUSE_ADDR does not answer (HTTP checked at $(http_addr); set CLICKHOUSE_HTTP_ADDR if that is wrong)"
		fi
	fi
	if answers "127.0.0.1:$LOCAL_TCP_PORT"; then
		if tm_pid_alive "$PIDFILE"; then
			tm_log "our server (pid $(cat "$PIDFILE")) is already running on 127.0.0.1:$LOCAL_TCP_PORT"
		else
			tm_log "using the ClickHouse already answering on 127.0.0.1:$LOCAL_TCP_PORT"
		fi
		return 0
	fi
	start_own
}

cmd_stop() {
	tm_stop_pidfile "$PIDFILE" 60
}

cmd_status() {
	local addr
	addr=$(native_addr)
	if answers "$addr"; then
		if tm_pid_alive "$PIDFILE"; then
			echo "clickhouse: up at $addr (ours, pid $(cat "$PIDFILE"))"
		else
			echo "clickhouse: up at $addr (not started by us)"
		fi
		return 0
	fi
	echo "clickhouse: not answering at $addr"
	return 1
}

cmd_env() {
	printf 'export CLICKHOUSE_ADDR=%s\n' "$(native_addr)"
	printf 'export CLICKHOUSE_HTTP_ADDR=%s\n' "$(http_addr)"
}

case "${1:-}" in
start) cmd_start ;;
install) install_engine ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
*)
	echo "usage: $0 start|stop|status|env|install" >&2
	exit 2
	;;
esac
