#!/usr/bin/env bash
# The CFO half of `make demo` (docs/forecast.md, docs/board-pack.md), called by
# demo.sh with tokenmeter running:
#
#   demo-story.sh history CONFIG   before the live traffic: plays a few months
#                                  of history (loadgen --story, past event times)
#                                  through the real pipeline.
#   demo-story.sh cfo CONFIG       after it: calibrate the 2026 plan against the
#                                  history, approve it, reconcile the 2027 plan
#                                  with its envelope, write the 2026-Q4 board pack
#                                  and print its path.
#
# Env: DEMO_STORY=0 skips both; DEMO_STORY_FROM (YYYY-MM-DD, default the 1st of
# the month three months back), DEMO_STORY_SCALE (default 1), DEMO_PERIOD
# (default this quarter), DEMO_PLAN (default pipelines/plans/acme-<year>.yaml),
# DEMO_NEXT_PLAN (default pipelines/plans/acme-<year+1>.yaml).
set -euo pipefail
TM_SCRIPT=demo
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$TM_ROOT"

phase=${1:?phase: history or cfo}
CONFIG=${2:?config}
[ "${DEMO_STORY:-1}" = 1 ] || exit 0
year=$(TZ=Asia/Hong_Kong date +%Y)
plan=${DEMO_PLAN:-pipelines/plans/acme-$year.yaml}
next=${DEMO_NEXT_PLAN:-pipelines/plans/acme-$((year + 1)).yaml}

case "$phase" in
history)
	from=()
	[ -z "${DEMO_STORY_FROM:-}" ] || from=(--story-from "$DEMO_STORY_FROM")
	tm_log "bin/tokenmeter loadgen --story: a few months of history with past event times, through the collector"
	bin/tokenmeter loadgen --config "$CONFIG" --story "${from[@]}" --story-scale "${DEMO_STORY_SCALE:-1}" --no-bad-events >"$TM_LOCAL/demo/story.log" ||
		{ tail -n 30 "$TM_LOCAL/demo/story.log" >&2; tm_die "the history did not play (log: $TM_LOCAL/demo/story.log)"; }
	grep -E '^tokenmeter loadgen: run' "$TM_LOCAL/demo/story.log" >&2 || true
	sed -n '/^expected usage/,/^  spend:/p' "$TM_LOCAL/demo/story.log" >&2 || true
	;;
cfo)
	if [ ! -f "$plan" ]; then
		tm_log "no plan $plan: skipping forecast, reconciliation and board pack"
		exit 0
	fi
	tm_log "bin/tokenmeter forecast calibrate -plan $plan -weeks 4: observed drivers beside the plan"
	bin/tokenmeter forecast calibrate -plan "$plan" -weeks 4 "$CONFIG" | head -n 40
	tm_log "bin/tokenmeter forecast approve -plan $plan -by cfo@acme"
	bin/tokenmeter forecast approve -plan "$plan" -by cfo@acme -note "demo: approved for the Q4 board" "$CONFIG"
	if [ -f "$next" ]; then
		tm_log "bin/tokenmeter reconcile -plan $next: next year's bottom-up plan against the CFO's envelope"
		bin/tokenmeter reconcile -plan "$next" "$CONFIG"
		pack_plan=(-plan "$next")
	else
		pack_plan=()
	fi
	quarter=${DEMO_PERIOD:-$year-Q$((($(TZ=Asia/Hong_Kong date +%-m) - 1) / 3 + 1))}
	tm_log "bin/tokenmeter levers top --period $quarter: the three largest savings across the levers (docs/levers.md)"
	bin/tokenmeter levers top --tenant acme --period "$quarter" --n 3 \
		--candidates anthropic/claude-haiku-4-5,openai/gpt-5.4-mini,openai/gpt-5.4-nano "$CONFIG"
	# The history's days only: today's live minute is another traffic mix.
	qm=$(( ($(TZ=Asia/Hong_Kong date +%-m) - 1) / 3 * 3 + 1 ))
	history=$(printf '%s-%02d-01' "$year" "$qm")..$(TZ=Asia/Hong_Kong date +%F)
	if [ "${history%%..*}" != "${history##*..}" ]; then
		tm_log "bin/tokenmeter levers anomalies --period $history: changes in the drivers of spend in the history"
		bin/tokenmeter levers anomalies --tenant acme --period "$history" "$CONFIG"
	fi
	tm_log "bin/tokenmeter report board-pack -tenant acme -period ${DEMO_PERIOD:-this quarter}"
	period=()
	[ -z "${DEMO_PERIOD:-}" ] || period=(-period "$DEMO_PERIOD")
	bin/tokenmeter report board-pack -tenant acme "${period[@]}" "${pack_plan[@]}" -out "$TM_LOCAL/reports" \
		-candidates anthropic/claude-haiku-4-5,openai/gpt-5.4-mini,openai/gpt-5.4-nano "$CONFIG"
	;;
*) tm_die "unknown phase $phase" ;;
esac
