#!/usr/bin/env bash
# Regenerates internal/contract/*/ *.pb.go from schemas/proto (run by
# `make generate` / `go generate ./internal/contract/...`).
#   protoc:         Debian's protobuf-compiler (apt-get install protobuf-compiler;
#                   3.21 on bookworm); installed here when missing and we are root.
#   protoc-gen-go:  built from google.golang.org/protobuf at the version go.mod
#                   pins, so the generated code matches the runtime library.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
GO=${GO:-go}
if ! command -v protoc >/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		apt-get install -y -q protobuf-compiler >/dev/null
	else
		echo "protoc not found: apt-get install protobuf-compiler" >&2
		exit 1
	fi
fi
mkdir -p .local/bin
"$GO" build -o .local/bin/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go
protoc --plugin=protoc-gen-go=.local/bin/protoc-gen-go -I schemas/proto \
	--go_out=. --go_opt=module=github.com/tokenmeter/tokenmeter \
	$(cd schemas/proto && find . -name '*.proto' | sed 's|^\./||' | sort)
