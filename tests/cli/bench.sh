#!/usr/bin/env bash
# bench.sh - casenet-bench (README "Performance") against the casenetd it
# starts: the JSON object the README promises, every Submit answered with a
# receipt that verifies and a notice, the schedule it keeps at a fixed rate,
# the --scale figures, and usage errors. Speed is never asserted here (it is
# the machine's); counts and the presence of each figure are.
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"

BENCH=${CASENET_BENCH:-$(dirname "$CASENET")/../bench/casenet-bench}
[ -x "$BENCH" ] || fail "casenet-bench not found at $BENCH"
export TMPDIR=$T

# jq_true FILE FILTER: the last line of FILE is JSON and FILTER holds on it.
jq_true() {
  tail -n 1 "$1" | jq -e "$2" >/dev/null || fail "$(basename "$1"): last line fails: $2"
}

step "usage"
expect_exit 0 "$BENCH" --help
for o in --duration --rate --connections --scale --json --broker; do
  expect_contains "$T/out" "$o"
done
expect_exit 2 "$BENCH" --no-such-option
expect_contains "$T/err" "no-such-option"
expect_contains "$T/err" "casenet-bench --help"
expect_exit 2 "$BENCH" --rate -5
expect_contains "$T/err" "bad value for --rate: '-5'"
expect_exit 2 "$BENCH" --duration=abc
expect_contains "$T/err" "bad value for --duration: 'abc'"
expect_exit 2 "$BENCH" --broker tcp://127.0.0.1:1
expect_contains "$T/err" "need --network DIR"

step "fixed rate, with the machine's ceilings"
expect_exit 0 "$BENCH" --json --duration 1 --warmup 0 --rate 150 --members 4 --connections 2
keys='msgs_per_s p50_ms p99_ms p999_ms notice_p99_ms verify_per_s_one_core fsync_per_s
  send_late_p50_ms send_late_p99_ms rss_max_kb broker_loop_cpu_s'
for k in $keys; do
  jq_true "$T/out" "has(\"$k\") and (.$k | type == \"number\")"
done
jq_true "$T/out" '.mode == "rate" and .rate == 150'
# 150 due in the measured second, each answered with a receipt, none refused
jq_true "$T/out" '.sent >= 140 and .sent <= 160'
jq_true "$T/out" '.receipts == .sent and .errors == 0 and .unanswered == 0'
# one in 64 verified against the broker's directory key, none failed
jq_true "$T/out" '.receipts_verified >= 2 and .receipt_verify_failures == 0'
jq_true "$T/out" '.notices == .receipts'
jq_true "$T/out" '.p50_ms > 0 and .p50_ms <= .p99_ms and .p99_ms <= .p999_ms'
jq_true "$T/out" '.send_late_p50_ms >= 0 and .send_late_p50_ms <= .send_late_p99_ms'
jq_true "$T/out" '.verify_per_s_one_core > 0 and .fsync_per_s > 0'
jq_true "$T/out" '.rss_max_kb > 0 and .broker_loop_cpu_s > 0'
expect_contains "$T/out" "schedule     sends"
# what the broker wrote: /proc io over the window, its page size
jq_true "$T/out" '.broker_wchar_per_msg > 0 and .broker_write_bytes_per_msg >= 0 and .page_size > 0'
expect_contains "$T/out" "writes       "

step "commits and log pages, from casenetd's stats lines (one a second); a batch window"
expect_exit 0 "$BENCH" --json --no-ceilings --duration 3 --warmup 0 --rate 100 --members 3 \
  --connections 2 --limit 'batch_window_us = 500'
jq_true "$T/out" '.receipts == .sent and .errors == 0 and .notices == .receipts'
jq_true "$T/out" '.commits_per_s > 0 and .pages_per_commit > 0 and .msgs_per_commit >= 1'
jq_true "$T/out" '.log_bytes_per_msg > 0'
expect_contains "$T/out" "commits      "

step "as fast as confirmed"
expect_exit 0 "$BENCH" --json --no-ceilings --duration 1 --warmup 0 --members 3 \
  --connections 2 --inflight 4 --pool 400
jq_true "$T/out" '.mode == "max" and .errors == 0 and .receipts > 0 and .notices > 0'
jq_true "$T/out" '.receipt_verify_failures == 0'
# the pool lasts or is reported as exhausted; either way nothing is lost
jq_true "$T/out" '.receipts + .unanswered == .sent'
expect_not_contains "$T/out" "schedule     sends"

step "scale: stored messages, start-up and inbox pages"
expect_exit 0 "$BENCH" --json --no-ceilings --scale 250 --no-load --members 3
jq_true "$T/out" '.scale.stored == 250 and (.scale.startup_ms | length) == 3'
jq_true "$T/out" '.scale.startup_ms | all(. > 0)'
jq_true "$T/out" '.scale.list_first_p50_ms > 0 and .scale.store_list_p50_ms > 0'
jq_true "$T/out" '.scale.db_bytes > 0'

step "the temporary directory is removed"
left=$(find "$T" -mindepth 1 -maxdepth 1 -not -name out -not -name err | wc -l)
[ "$left" = 0 ] || fail "casenet-bench left $left entries in TMPDIR"

echo "bench: ok"
