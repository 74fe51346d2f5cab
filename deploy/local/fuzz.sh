#!/usr/bin/env bash
# Runs every fuzz target of the module (func FuzzXxx in *_test.go) for
# FUZZTIME each (default 3s): the decoders of outside input (HTTP JSON,
# NDJSON, CloudEvents, provider-native, OTLP JSON/protobuf, the limit scans,
# the budget API, configs, CSV) against fresh random input on every run, on
# top of their seed corpora, which `go test` always runs. `make test` calls
# it; FUZZTIME=0 skips it. A failing input is written under the package's
# testdata/fuzz/ by go test: commit it as a regression case.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
GO=${GO:-$(deploy/local/ensure-go.sh)}
FUZZTIME=${FUZZTIME:-3s}
[ "$FUZZTIME" = 0 ] && exit 0
rc=0
n=0
t0=$SECONDS
while IFS=: read -r file name; do
	pkg="./$(dirname "$file")"
	n=$((n + 1))
	log="${TMPDIR:-/tmp}/fuzz-$$.log"
	result=failed
	for attempt in 1 2 3; do
		if "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -parallel 2 "$pkg" >"$log" 2>&1; then
			result=ok
			break
		fi
		# Go's fuzzing engine can end a short run with "context deadline
		# exceeded" while it is still handling a new interesting input: no
		# failing input is written, so it is not a finding. Run it again;
		# anything else (a crash, a hang, a failing input) fails at once.
		if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written to' "$log"; then
			result=engine-timeout
			continue
		fi
		result=failed
		break
	done
	case "$result" in
	ok) echo "fuzz: $pkg $name ok" ;;
	engine-timeout) echo "fuzz: $pkg $name: the fuzzing engine ran out of time 3 times without a failing input (not a finding)" >&2 ;;
	*)
		echo "fuzz: $pkg $name FAILED:" >&2
		tail -n 30 "$log" >&2
		rc=1
		;;
	esac
done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' internal cmd bench 2>/dev/null | sed 's/func //' | sort)
rm -f "${TMPDIR:-/tmp}/fuzz-$$.log"
echo "fuzz: $n targets, ${FUZZTIME} each, in $((SECONDS - t0))s"
exit "$rc"
