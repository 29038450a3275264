#!/usr/bin/env bash
# blob_sweep.sh - the broker's blob sweep is cut into steps of at most 128
# blobs (fewer when a step reaches 20 ms), one per idle tick of the loop, so
# that a sweep over many blobs never holds the loop: 1000 stale
# unreferenced blobs in the data directory are deleted by one pass of at
# least 8 steps (a `blobs_sweep_step` line each but the last, then
# `blobs_deleted count=1000 steps=K`), and a member's Submits are answered
# between the first step and the last. The time each step took is printed
# (a measurement, not asserted).
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source=tests/cli/broker.sh
source "$(dirname "$0")/broker.sh"

step "1000 stale unreferenced blobs, then the broker"
N=$T/net
make_network "$N"
mkdir -p "$N/data/blobs"
chmod 700 "$N/data" "$N/data/blobs"
for i in $(seq 1 1000); do
  d=$N/data/blobs/$(printf '%032x' "$i")
  mkdir "$d"
  # owner, 1 chunk, 17 bytes, created at 1 s after the epoch: long unreferenced
  printf 'vn.hotline111 1 17 1000\n' >"$d/meta"
done
printf '[limits]\nsubmit_rate = 0\nmax_pair_backlog = 0\n' >"$T/casenetd.ini"
broker_args=(--config "$T/casenetd.ini")
# shellcheck disable=SC2119 # a free port
start_broker
write_referral "$T/referral.json"

step "a member submits while the pass runs"
sent=0
for _ in $(seq 1 100); do
  grep -q "event=blobs_deleted" "$T/broker.log" && break
  expect_exit 0 "$CASENET" send --home "$N/home/vn.hotline111" --to vn.police.a05 \
    --kind referral <"$T/referral.json"
  sent=$((sent + 1))
done
echo "sent $sent messages during the sweep"
for _ in $(seq 1 600); do
  grep -q "event=blobs_deleted" "$T/broker.log" && break
  sleep 0.2
done

step "one pass of 8 steps or more, Submits answered between them"
expect_contains "$T/broker.log" "event=blobs_deleted count=1000 steps="
steps=$(sed -n 's/.*event=blobs_deleted count=1000 steps=\([0-9]*\) kept=0.*/\1/p' "$T/broker.log")
[ "${steps:-0}" -ge 8 ] || fail "the pass took ${steps:-?} steps, want 8 or more"
[ "$(grep -c "event=blobs_sweep_step" "$T/broker.log")" = $((steps - 1)) ] ||
  fail "$(grep -c "event=blobs_sweep_step" "$T/broker.log") step lines, want $((steps - 1))"
left=$(find "$N/data/blobs" -mindepth 1 -maxdepth 1 -type d | wc -l)
[ "$left" = 0 ] || fail "$left blobs are left"
first=$(grep -n "event=blobs_sweep_step" "$T/broker.log" | head -n 1 | cut -d: -f1)
last=$(grep -n "event=blobs_deleted" "$T/broker.log" | cut -d: -f1)
between=$(sed -n "${first},${last}p" "$T/broker.log" | grep -c "event=submit")
echo "Submits stored between the first step and the last: $between"
[ "$between" -gt 0 ] || fail "no Submit was answered while the pass ran"
grep -o 'event=blobs_sweep_step.*' "$T/broker.log" | sed 's/^/  /'
grep -o 'event=blobs_deleted.*' "$T/broker.log" | sed 's/^/  /'
echo "OK"
