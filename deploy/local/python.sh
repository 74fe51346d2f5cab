#!/usr/bin/env bash
# Python test tooling: one pinned virtualenv per area.
#
#   python.sh ensure AREA   create .local/venv-AREA from tests/python/AREA/requirements.txt
#                           (pinned versions) if missing or changed; print its python
#   python.sh ensure-all    ensure every area under tests/python/
#
# Areas keep their own venvs because instrumentation libraries pin different
# OpenTelemetry versions. Tests find the interpreter through
# testenv.Python(t, AREA), which reads TOKENMETER_VENV_DIR (test.sh exports it).
# Product code is Go; Python only drives real third-party clients in tests.
set -euo pipefail
TM_SCRIPT=python
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure() {
	local area=$1 req venv stamp
	req="$TM_ROOT/tests/python/$area/requirements.txt"
	[ -f "$req" ] || tm_die "no $req"
	venv="$TM_LOCAL/venv-$area"
	stamp="$venv/.requirements.sha256"
	local want
	want=$(sha256sum "$req" | cut -d' ' -f1)
	if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
		printf '%s\n' "$venv/bin/python"
		return 0
	fi
	command -v python3 >/dev/null 2>&1 || tm_apt_install python3 python3-venv
	python3 -m venv --clear "$venv" >&2 || { tm_apt_install python3-venv; python3 -m venv --clear "$venv" >&2; }
	tm_log "pip install -r tests/python/$area/requirements.txt into $venv"
	"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2 ||
		tm_die "pip install for $area failed"
	printf '%s\n' "$want" >"$stamp"
	printf '%s\n' "$venv/bin/python"
}

case "${1:-}" in
ensure) ensure "${2:?area}" ;;
ensure-all)
	for d in "$TM_ROOT"/tests/python/*/; do
		if [ -f "$d/requirements.txt" ]; then
			ensure "$(basename "$d")" >/dev/null
		fi
	done
	;;
*)
	echo "usage: $0 ensure AREA | ensure-all" >&2
	exit 2
	;;
esac
