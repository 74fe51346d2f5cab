#!/usr/bin/env bash
# Debian's nginx for the gateway's auth_request test (internal/gateway).
#
#   nginx.sh ensure   install Debian's `nginx` package if missing; print its path
#
# The test writes its own nginx.conf (loopback, free ports, a temp prefix)
# and finds the binary through TOKENMETER_NGINX or PATH; nothing here runs a
# system-wide nginx (the package's service is not started by the test).
set -euo pipefail
TM_SCRIPT=nginx
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure() {
	local bin
	bin=$(command -v nginx 2>/dev/null || true)
	[ -n "$bin" ] || [ ! -x /usr/sbin/nginx ] || bin=/usr/sbin/nginx
	if [ -z "$bin" ]; then
		tm_apt_install nginx
		bin=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
	fi
	"$bin" -V 2>&1 | grep -q -- '--with-http_auth_request_module' || tm_die "$bin lacks the auth_request module"
	printf '%s\n' "$bin"
}

case "${1:-}" in
ensure) ensure ;;
*)
	echo "usage: $0 ensure" >&2
	exit 2
	;;
esac
