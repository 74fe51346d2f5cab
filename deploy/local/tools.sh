#!/usr/bin/env bash
# Debian tools that tests drive as real clients or observers, installed by
# `make test` when missing (a fresh machine has none of them):
#
#   strace         observes the embedded broker's fsync before acknowledging
#   chromium       renders the board pack (headless) for a screenshot
#   poppler-utils  pdftoppm / pdftotext check the board pack's PDF
#   nginx          auth_request in front of a fake provider, asking the gateway
#
#   tools.sh ensure   install whichever is missing (apt-get, once)
set -euo pipefail
TM_SCRIPT=tools
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# command -> Debian package
TOOLS=(strace:strace chromium:chromium pdftoppm:poppler-utils pdftotext:poppler-utils nginx:nginx)

ensure() {
	local missing=() t cmd pkg
	for t in "${TOOLS[@]}"; do
		cmd=${t%%:*} pkg=${t#*:}
		if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
			case " ${missing[*]} " in *" $pkg "*) ;; *) missing+=("$pkg") ;; esac
		fi
	done
	if [ ${#missing[@]} -eq 0 ]; then
		return 0
	fi
	tm_apt_install "${missing[@]}"
	# nginx's package starts a system service on :80 where systemd runs; the
	# tests start their own nginx with their own config.
	if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
		tm_sudo systemctl disable --now nginx >/dev/null 2>&1 || true
	fi
}

case "${1:-}" in
ensure) ensure ;;
*)
	echo "usage: $0 ensure" >&2
	exit 2
	;;
esac
