#!/usr/bin/env bash
# The board pack's render test tools (internal/report browser_test.go):
# Debian's chromium (headless screenshot of the HTML) and poppler-utils
# (pdftoppm, pdftotext for the PDF), plus DejaVu fonts.
#
#   browser.sh ensure   install what is missing (apt-get; root or sudo)
#   browser.sh check    exit 1 if something is missing
set -euo pipefail
TM_SCRIPT=browser
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

missing() {
	local m=()
	command -v chromium >/dev/null 2>&1 || m+=(chromium)
	command -v pdftoppm >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1 || m+=(poppler-utils)
	[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || m+=(fonts-dejavu-core)
	printf '%s\n' "${m[@]}"
}

case "${1:-ensure}" in
ensure)
	mapfile -t need < <(missing | sed '/^$/d')
	if [ "${#need[@]}" -gt 0 ]; then
		tm_apt_install "${need[@]}"
	fi
	tm_log "chromium, pdftoppm, pdftotext present"
	;;
check)
	mapfile -t need < <(missing | sed '/^$/d')
	[ "${#need[@]}" -eq 0 ] || tm_die "missing: ${need[*]} (deploy/local/browser.sh ensure)"
	;;
*) tm_die "usage: browser.sh ensure|check" ;;
esac
