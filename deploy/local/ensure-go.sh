#!/usr/bin/env bash
# Prints the path of a `go` command able to build this module (the `go`
# directive in go.mod), installing one if needed:
#   1. `go` on PATH if it is new enough, or is >= 1.21 and may fetch the right
#      toolchain itself (GOTOOLCHAIN not "local");
#   2. else the toolchain module golang.org/toolchain from the Go module proxy,
#      unpacked into .local/go (curl/unzip installed with apt if missing).
set -euo pipefail
TM_SCRIPT=ensure-go
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

want=$(sed -n 's/^go \([0-9][0-9.]*\).*/\1/p' "$TM_ROOT/go.mod" | head -n1)
[ -n "$want" ] || tm_die "no go directive in go.mod"

# version_ge A B: A >= B for dotted versions.
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]; }

go_version_of() { "$1" env GOVERSION 2>/dev/null | sed 's/^go//; s/[^0-9.].*//'; }

local_go="$TM_LOCAL/go/go$want/bin/go"
if [ -x "$local_go" ]; then
	echo "$local_go"
	exit 0
fi

if sys_go=$(command -v go 2>/dev/null); then
	# With GOTOOLCHAIN=local, `go env` would refuse a too-new go.mod; ask from /.
	have=$(cd / && GOTOOLCHAIN=local go_version_of "$sys_go" || true)
	if [ -n "$have" ]; then
		if version_ge "$have" "$want"; then
			echo "$sys_go"
			exit 0
		fi
		if version_ge "$have" 1.21 && [ "${GOTOOLCHAIN:-auto}" != local ]; then
			# go switches to go$want by itself (downloaded through GOPROXY).
			echo "$sys_go"
			exit 0
		fi
	fi
fi

case "$(uname -m)" in
x86_64 | amd64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*) tm_die "no Go toolchain for $(uname -m); install Go $want yourself" ;;
esac
need=()
command -v curl >/dev/null 2>&1 || need+=(curl ca-certificates)
command -v unzip >/dev/null 2>&1 || need+=(unzip)
[ ${#need[@]} -eq 0 ] || tm_apt_install "${need[@]}"

proxy=${GOPROXY:-https://proxy.golang.org}
proxy=${proxy%%[,|]*}
case "$proxy" in http://* | https://*) ;; *) proxy=https://proxy.golang.org ;; esac
url="$proxy/golang.org/toolchain/@v/v0.0.1-go$want.linux-$arch.zip"
tmp="$TM_LOCAL/go/.download"
rm -rf "$tmp"
mkdir -p "$tmp"
tm_log "downloading Go $want from $url"
curl -fsSL --retry 3 -o "$tmp/go.zip" "$url" || tm_die "could not download Go $want from $url"
unzip -q "$tmp/go.zip" -d "$tmp" || tm_die "could not unzip $tmp/go.zip"
rm -rf "$TM_LOCAL/go/go$want"
mv "$tmp/golang.org/toolchain@v0.0.1-go$want.linux-$arch" "$TM_LOCAL/go/go$want"
chmod +x "$TM_LOCAL/go/go$want/bin/"* "$TM_LOCAL/go/go$want/pkg/tool/"*/* 2>/dev/null || true
rm -rf "$tmp"
"$local_go" version >&2 || tm_die "downloaded Go does not run"
echo "$local_go"
