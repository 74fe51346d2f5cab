# shellcheck shell=bash
# Shared helpers for deploy/local/*.sh. Source it; it sets no shell options.

TM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Everything we create at run time (service data, logs, pid files, downloaded
# jars, toolchains) lives under .local/ in the repo; it is gitignored.
TM_LOCAL="${TOKENMETER_LOCAL_DIR:-$TM_ROOT/.local}"

tm_log() { printf '%s: %s\n' "${TM_SCRIPT:-tokenmeter}" "$*" >&2; }
tm_die() { printf '%s: error: %s\n' "${TM_SCRIPT:-tokenmeter}" "$*" >&2; exit 1; }

# tm_port_open HOST PORT: true if a TCP connect succeeds within 2 s.
tm_port_open() {
	timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

# tm_http_get HOST PORT PATH: prints the response body of an HTTP/1.0 GET,
# using bash's /dev/tcp so a fresh machine needs no curl.
tm_http_get() {
	timeout 5 bash -c '
		exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$0" >&3
		sed "1,/^\r\{0,1\}$/d" <&3
	' "$1" "$2" "$3" 2>/dev/null
}

# tm_split_addr ADDR VAR_HOST VAR_PORT: host:port -> two variables.
tm_split_addr() {
	local addr=$1
	printf -v "$2" '%s' "${addr%:*}"
	printf -v "$3" '%s' "${addr##*:}"
}

tm_is_local_host() {
	case "$1" in 127.0.0.1 | localhost | ::1 | "[::1]") return 0 ;; esac
	return 1
}

tm_sudo() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		tm_die "need root (or sudo) to run: $*"
	fi
}

# tm_apt_install PKG...: installs Debian packages, running apt-get update at
# most once per machine-boot-ish (marker in .local) and waiting for a dpkg
# lock held by another apt instead of failing.
tm_apt_install() {
	command -v apt-get >/dev/null 2>&1 || tm_die "apt-get not found; install these yourself: $*"
	export DEBIAN_FRONTEND=noninteractive
	mkdir -p "$TM_LOCAL"
	if [ ! -e "$TM_LOCAL/.apt-updated" ] || [ -n "$(find "$TM_LOCAL/.apt-updated" -mmin +720 2>/dev/null)" ]; then
		tm_log "apt-get update"
		tm_sudo apt-get -o DPkg::Lock::Timeout=900 update -qq >&2 || tm_die "apt-get update failed"
		touch "$TM_LOCAL/.apt-updated"
	fi
	tm_log "apt-get install $*"
	tm_sudo apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "$@" >&2 ||
		tm_die "apt-get install $* failed"
}

# tm_pid_alive PIDFILE: true if the pid file names a live process.
tm_pid_alive() {
	local pid
	[ -s "$1" ] || return 1
	pid=$(cat "$1" 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# tm_stop_pidfile PIDFILE [TIMEOUT]: SIGTERM the process in PIDFILE, wait,
# then SIGKILL. Only ever touches the process we recorded.
tm_stop_pidfile() {
	local pidfile=$1 timeout=${2:-30} pid i
	if ! tm_pid_alive "$pidfile"; then
		rm -f "$pidfile"
		tm_log "not running (no live pid in $pidfile)"
		return 0
	fi
	pid=$(cat "$pidfile")
	tm_log "stopping pid $pid"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < timeout * 5; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		tm_log "pid $pid ignored SIGTERM for ${timeout}s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 0.5
	fi
	rm -f "$pidfile"
}

# tm_http_status HOST PORT PATH: prints the HTTP status code of a GET (empty
# if there is no answer).
tm_http_status() {
	timeout 5 bash -c '
		exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$0" >&3
		head -n1 <&3 | cut -d" " -f2
	' "$1" "$2" "$3" 2>/dev/null || true
}

# tm_http_post HOST PORT PATH BODY: POSTs BODY with bash's /dev/tcp (no curl
# needed on a fresh machine), prints the response body, and fails unless the
# answer is 200 (ClickHouse's HTTP interface answers errors with 4xx/5xx).
tm_http_post() {
	timeout 30 bash -c '
		exec 3<>"/dev/tcp/$0/$1" || exit 1
		printf "POST %s HTTP/1.0\r\nHost: %s\r\nContent-Length: %d\r\n\r\n%s" "$2" "$0" "${#3}" "$3" >&3
		resp=$(cat <&3)
		printf "%s\n" "$resp" | sed "1,/^\r\{0,1\}$/d"
		[ "$(printf "%s\n" "$resp" | head -n1 | cut -d" " -f2)" = 200 ]
	' "$1" "$2" "$3" "$4"
}
