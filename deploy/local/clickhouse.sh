#!/usr/bin/env bash
# ClickHouse for tests and the demo.
#
#   clickhouse.sh start    use CLICKHOUSE_ADDR if it answers, else one already on
#                          127.0.0.1:9000, else install Debian's clickhouse-server
#                          if missing and start our own (state in .local/clickhouse)
#   clickhouse.sh stop     stop the server we started (pid file); never any other
#   clickhouse.sh status   exit 0 if a server answers at the address `env` prints
#   clickhouse.sh env      print `export CLICKHOUSE_ADDR=… CLICKHOUSE_HTTP_ADDR=…`
#
# Env: CLICKHOUSE_ADDR (native host:port), CLICKHOUSE_HTTP_ADDR (host:port),
#      CLICKHOUSE_START_TIMEOUT (seconds, default 90), CLICKHOUSE_LOCAL_PORT /
#      CLICKHOUSE_LOCAL_HTTP_PORT / CLICKHOUSE_LOCAL_INTERSERVER_PORT (ports of
#      our own server: 9000 / 8123 / 9009), TOKENMETER_LOCAL_DIR (state, .local).
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

server_bin() {
	if command -v clickhouse-server >/dev/null 2>&1; then
		command -v clickhouse-server
	elif [ -x /usr/sbin/clickhouse-server ]; then
		echo /usr/sbin/clickhouse-server
	elif command -v clickhouse >/dev/null 2>&1; then
		echo "$(command -v clickhouse) server"
	else
		return 1
	fi
}

start_own() {
	local bin
	if ! bin=$(server_bin); then
		tm_log "clickhouse-server not installed; installing Debian's package"
		tm_apt_install clickhouse-server clickhouse-client
		bin=$(server_bin) || tm_die "clickhouse-server still not found after apt-get install"
		# On a systemd machine the package starts its own service on 9000
		# with /etc config; we installed it only to run our own (.local
		# config: capped threads, our users), so switch that service off.
		if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ] &&
			systemctl is-active --quiet clickhouse-server 2>/dev/null; then
			tm_log "stopping and disabling the clickhouse-server system service the package just started"
			tm_sudo systemctl disable --now clickhouse-server >/dev/null 2>&1 || true
		fi
	fi
	if tm_pid_alive "$PIDFILE"; then
		tm_log "our server (pid $(cat "$PIDFILE")) is running but not answering yet; waiting"
	else
		if tm_port_open 127.0.0.1 "$LOCAL_HTTP_PORT" || tm_port_open 127.0.0.1 "$LOCAL_TCP_PORT"; then
			tm_die "port $LOCAL_TCP_PORT or $LOCAL_HTTP_PORT on 127.0.0.1 is taken by something that is not a working ClickHouse; free it or set CLICKHOUSE_ADDR"
		fi
		render_config
		rm -f "$PIDFILE"
		tm_log "starting $bin (data in $STATE)"
		# Own session (setsid) so Ctrl-C in the caller's terminal does not
		# reach it. Without job control a background job is not a process
		# group leader, so setsid execs in place and $! is the server's pid.
		# shellcheck disable=SC2086
		(
			cd "$STATE"
			setsid $bin --config-file="$STATE/etc/config.xml" </dev/null >>"$STATE/log/stdout.log" 2>&1 &
			echo $! >"$PIDFILE"
		)
		# Interrupted before it answers: do not leave a half-started server.
		trap 'tm_stop_pidfile "$PIDFILE" 10; exit 130' INT
		trap 'tm_stop_pidfile "$PIDFILE" 10; exit 143' TERM
	fi
	local start=$SECONDS
	while ! answers "127.0.0.1:$LOCAL_TCP_PORT"; do
		if [ $((SECONDS - start)) -ge "$START_TIMEOUT" ]; then
			tail -n 20 "$STATE/log/clickhouse-server.err.log" "$STATE/log/stdout.log" >&2 2>/dev/null || true
			tm_stop_pidfile "$PIDFILE" 10
			tm_die "ClickHouse did not answer on 127.0.0.1:$LOCAL_TCP_PORT within ${START_TIMEOUT}s (stopped it); logs in $STATE/log"
		fi
		if ! tm_pid_alive "$PIDFILE"; then
			tail -n 30 "$STATE/log/clickhouse-server.err.log" "$STATE/log/stdout.log" >&2 2>/dev/null || true
			tm_die "ClickHouse server exited during start-up; logs in $STATE/log"
		fi
		sleep 0.5
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
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
*)
	echo "usage: $0 start|stop|status|env" >&2
	exit 2
	;;
esac
