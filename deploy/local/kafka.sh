#!/usr/bin/env bash
# Apache Kafka for tests.
#
#   kafka.sh start    use KAFKA_BROKERS if it answers, else start a single-node
#                     KRaft broker on 127.0.0.1:19092 (controller 19093) from
#                     Maven Central jars (deploy/local/kafka/pom.xml), state in
#                     .local/kafka; installs a JRE and Maven with apt if missing
#   kafka.sh stop     stop the broker we started (pid file); never any other
#   kafka.sh status   exit 0 if the brokers `env` prints answer
#   kafka.sh env      print `export KAFKA_BROKERS=…`
#
# Env: KAFKA_BROKERS (comma-separated host:port), KAFKA_START_TIMEOUT (s, 120),
#      KAFKA_HEAP_OPTS (default -Xmx512m -Xms256m), KAFKA_KEEP_DATA=1 (keep
#      topics across restarts; by default a fresh start begins empty),
#      KAFKA_AUTO_CREATE_TOPICS (false), KAFKA_LOCAL_PORT /
#      KAFKA_LOCAL_CONTROLLER_PORT (our broker's ports: 19092 / 19093),
#      TOKENMETER_LOCAL_DIR (state, default .local).
set -euo pipefail
TM_SCRIPT=kafka
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Ports of the broker we start ourselves; override to run a second instance.
PORT=${KAFKA_LOCAL_PORT:-19092}
CONTROLLER_PORT=${KAFKA_LOCAL_CONTROLLER_PORT:-19093}
LOCAL_BROKERS="127.0.0.1:$PORT"
STATE="$TM_LOCAL/kafka"
PIDFILE="$STATE/kafka.pid"
LIBS="$STATE/libs"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
POM="$TM_ROOT/deploy/local/kafka/pom.xml"

brokers() { printf '%s' "${KAFKA_BROKERS:-$LOCAL_BROKERS}"; }

# answers BROKERS: true if any listed broker accepts a TCP connection and
# answers a Kafka ApiVersions request.
answers() {
	local b h p
	IFS=',' read -r -a list <<<"$1"
	for b in "${list[@]}"; do
		b=${b// /}
		[ -n "$b" ] || continue
		tm_split_addr "$b" h p
		if tm_port_open "$h" "$p" && api_versions_ok "$h" "$p"; then
			return 0
		fi
	done
	return 1
}

# api_versions_ok HOST PORT: sends ApiVersions v0 (api key 18, correlation id
# 7, client id "tm") and checks the reply echoes the correlation id with
# error code 0.
api_versions_ok() {
	local reply
	reply=$(timeout 5 bash -c '
		exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x07\x00\x02tm" >&3
		head -c 10 <&3 | od -An -tx1 | tr -d " \n"
	' "$1" "$2" 2>/dev/null) || return 1
	# 4-byte size, correlation id 00000007, error code 0000
	[ "${reply:8:12}" = "000000070000" ]
}

ensure_java() {
	local need=()
	command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
	command -v mvn >/dev/null 2>&1 || need+=(maven)
	if [ ${#need[@]} -gt 0 ]; then
		tm_log "installing ${need[*]}"
		tm_apt_install "${need[@]}"
	fi
	local v
	v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
	[ -n "$v" ] && [ "$v" -ge 17 ] || tm_die "Kafka 4 needs Java 17 or newer; found java version '${v:-unknown}'"
}

ensure_jars() {
	local stamp="$LIBS/.pom.sha256" sum
	sum=$(sha256sum "$POM" | cut -d' ' -f1)
	if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && ls "$LIBS"/kafka_2.13-*.jar >/dev/null 2>&1; then
		return 0
	fi
	tm_log "resolving Kafka jars with Maven (first run downloads ~60 MB into ~/.m2)"
	rm -rf "$LIBS"
	mkdir -p "$LIBS"
	# Try the local repository first so a warm ~/.m2 needs no network.
	if ! mvn -B -q -Dstyle.color=never -o -f "$POM" dependency:copy-dependencies -DoutputDirectory="$LIBS" -DincludeScope=runtime >/dev/null 2>&1; then
		mvn -B -q -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DoutputDirectory="$LIBS" -DincludeScope=runtime >&2 ||
			tm_die "mvn could not resolve Kafka from Maven Central (see output above)"
	fi
	echo "$sum" >"$stamp"
}

render_config() {
	local auto="${KAFKA_AUTO_CREATE_TOPICS:-false}"
	mkdir -p "$STATE/etc" "$STATE/logs"
	sed -e "s|@DATA@|$STATE/data|g" -e "s|@PORT@|$PORT|g" \
		-e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" -e "s|@AUTO_CREATE@|$auto|g" \
		"$TM_ROOT/deploy/local/kafka/server.properties.tmpl" >"$STATE/etc/server.properties"
	cp "$TM_ROOT/deploy/local/kafka/log4j2.properties" "$STATE/etc/log4j2.properties"
}

# java_args: the JVM command line shared by the storage tool and the broker.
java_args() {
	# shellcheck disable=SC2206
	JAVA_ARGS=(java ${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20
		-XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
		-Dkafka.logs.dir="$STATE/logs" -Dlog4j2.configurationFile="$STATE/etc/log4j2.properties"
		-cp "$LIBS/*")
}

format_storage() {
	if [ "${KAFKA_KEEP_DATA:-0}" = 1 ] && [ -f "$STATE/data/meta.properties" ]; then
		return 0
	fi
	rm -rf "$STATE/data"
	local cluster_id
	# A KRaft cluster id is 16 random bytes, base64url without padding.
	cluster_id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
	tm_log "formatting KRaft storage (cluster $cluster_id)"
	java_args
	"${JAVA_ARGS[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$STATE/etc/server.properties" \
		>"$STATE/logs/format.log" 2>&1 ||
		{
			cat "$STATE/logs/format.log" >&2
			tm_die "kafka storage format failed"
		}
}

start_own() {
	ensure_java
	ensure_jars
	local start=$SECONDS
	if tm_pid_alive "$PIDFILE"; then
		tm_log "our broker (pid $(cat "$PIDFILE")) is running but not answering yet; waiting"
	else
		if tm_port_open 127.0.0.1 "$PORT" || tm_port_open 127.0.0.1 "$CONTROLLER_PORT"; then
			tm_die "port $PORT or $CONTROLLER_PORT on 127.0.0.1 is taken by something that is not a working Kafka broker; free it or set KAFKA_BROKERS"
		fi
		render_config
		format_storage
		rm -f "$PIDFILE"
		: >"$STATE/logs/server.log"
		tm_log "starting Kafka $(basename "$LIBS"/kafka_2.13-*.jar .jar | sed 's/kafka_2.13-//') on 127.0.0.1:$PORT (state in $STATE)"
		java_args
		(
			cd "$STATE"
			# Own session (setsid) so the caller's Ctrl-C does not reach it.
			# Without job control a background job is not a process group
			# leader, so setsid execs in place and $! is the JVM's pid.
			setsid "${JAVA_ARGS[@]}" kafka.Kafka "$STATE/etc/server.properties" \
				</dev/null >>"$STATE/logs/stdout.log" 2>&1 &
			echo $! >"$PIDFILE"
		)
		# Interrupted before it answers: do not leave a half-started server.
		trap 'tm_stop_pidfile "$PIDFILE" 10; exit 130' INT
		trap 'tm_stop_pidfile "$PIDFILE" 10; exit 143' TERM
	fi
	while ! answers "$LOCAL_BROKERS" || ! grep -q "Kafka Server started" "$STATE/logs/server.log" 2>/dev/null; do
		if ! tm_pid_alive "$PIDFILE"; then
			tail -n 40 "$STATE/logs/stdout.log" "$STATE/logs/server.log" >&2 2>/dev/null || true
			tm_die "Kafka exited during start-up; logs in $STATE/logs"
		fi
		if [ $((SECONDS - start)) -ge "$START_TIMEOUT" ]; then
			tail -n 40 "$STATE/logs/server.log" >&2 2>/dev/null || true
			tm_stop_pidfile "$PIDFILE" 10
			tm_die "Kafka did not answer on $LOCAL_BROKERS within ${START_TIMEOUT}s (stopped it); logs in $STATE/logs"
		fi
		sleep 0.5
	done
	tm_log "started; brokers $LOCAL_BROKERS ($((SECONDS - start))s)"
	trap - INT TERM
}

cmd_start() {
	if [ -n "${KAFKA_BROKERS:-}" ]; then
		if answers "$KAFKA_BROKERS"; then
			tm_log "using Kafka at $KAFKA_BROKERS (KAFKA_BROKERS)"
			return 0
		fi
		[ "$KAFKA_BROKERS" = "$LOCAL_BROKERS" ] || [ "$KAFKA_BROKERS" = "localhost:$PORT" ] ||
			tm_die "KAFKA_BROKERS=$KAFKA_BROKERS does not answer"
	fi
	if answers "$LOCAL_BROKERS"; then
		if tm_pid_alive "$PIDFILE"; then
			tm_log "our broker (pid $(cat "$PIDFILE")) is already running on $LOCAL_BROKERS"
		else
			tm_log "using the Kafka already answering on $LOCAL_BROKERS"
		fi
		return 0
	fi
	start_own
}

cmd_stop() {
	tm_stop_pidfile "$PIDFILE" 60
}

cmd_status() {
	local b
	b=$(brokers)
	if answers "$b"; then
		if tm_pid_alive "$PIDFILE"; then
			echo "kafka: up at $b (ours, pid $(cat "$PIDFILE"))"
		else
			echo "kafka: up at $b (not started by us)"
		fi
		return 0
	fi
	echo "kafka: not answering at $b"
	return 1
}

cmd_env() {
	printf 'export KAFKA_BROKERS=%s\n' "$(brokers)"
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
