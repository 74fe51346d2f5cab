#!/usr/bin/env bash
# CPU time per benchmark operation (user+sys of the test process, GC included),
# which stays meaningful on a loaded, shared machine where ns/op does not:
# (cpu(-benchtime Nx) - cpu(-benchtime 1x)) / (N-1). Alternates two checkouts.
#   bench/cpu-per-op.sh BEFORE_DIR AFTER_DIR [ROUNDS]
# e.g. git worktree add /tmp/before <commit>; bench/cpu-per-op.sh /tmp/before . 3
set -euo pipefail
before=$(cd "$1" && pwd); after=$(cd "$2" && pwd); rounds=${3:-3}
GO=${GO:-go}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
specs=(
	"processor ^BenchmarkEncodePriced$/^(appendPriced|contract)$ 200000"
	"sink ^BenchmarkDecodePriced$ 50000"
	"pricing ^BenchmarkPrice$/^HKD$ 200000"
	"budget ^BenchmarkAccountPricedEvent$ 50000"
	"processor ^BenchmarkProcessEvent$ 50000"
)
for side in before after; do
	src=$before; [ $side = after ] && src=$after
	mkdir -p "$bin/$side"
	for p in processor sink pricing budget; do (cd "$src" && $GO test -c -o "$bin/$side/$p.test" ./internal/$p); done
done
cpu() { # binary bench n dir
	local t
	t=$( { TIMEFORMAT='%U %S'; time (cd "$4" && "$1" -test.run '^$' -test.bench "$2" -test.benchtime "$3x" >/dev/null 2>&1); } 2>&1 | tail -1)
	echo "$t" | awk '{print $1+$2}'
}
for r in $(seq "$rounds"); do
	for side in before after; do
		src=$before; [ $side = after ] && src=$after
		for spec in "${specs[@]}"; do
			set -- $spec
			big=$(cpu "$bin/$side/$1.test" "$2" "$3" "$src/internal/$1")
			one=$(cpu "$bin/$side/$1.test" "$2" 1 "$src/internal/$1")
			printf '%s %-6s %-10s %-45s %8.0f cpu-ns/op  load %s\n' "$r" "$side" "$1" "$2" \
				"$(awk -v a="$big" -v b="$one" -v n="$3" 'BEGIN{print (a-b)*1e9/(n-1)}')" "$(cut -d' ' -f1 /proc/loadavg)"
		done
	done
done
