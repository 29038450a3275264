#!/usr/bin/env bash
# admin.sh - the admin listener (--admin): /metrics parsed by
# prometheus_client's text parser while Submits run, counters moving by
# exactly what the test did (the blob counters and gauges too); /healthz, /readyz (a directory about to
# expire, the disk reserve crossed), 404/405; a non-loopback address
# refused; sd_notify READY/WATCHDOG/STOPPING against a socket the test
# listens on (tests/cli/admin_probe.py).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker.sh"
PY=/usr/bin/python3
PROBE=$(dirname "$0")/admin_probe.py
ADMIN=127.0.0.1:$((20000 + RANDOM % 40000))
URL=http://$ADMIN

# value NAME LABELS: the sample's value in $T/scrape ("" when absent)
value() { awk -v k="$1{$2}" '$1 == k { print $2 }' "$T/scrape"; }
# wait_ready WANT: polls /readyz until its status is WANT
wait_ready() {
  for _ in $(seq 1 150); do
    "$PY" "$PROBE" status "$URL" /readyz >"$T/ready"
    [ "$(head -n 1 "$T/ready")" = "$1" ] && return 0
    sleep 0.1
  done
  cat "$T/ready" >&2
  fail "/readyz did not answer $1"
}

step "a non-loopback admin address is refused, naming TLS"
make_network "$T/net"
N=$T/net
expect_exit 1 "$CASENETD" --data "$N/data" --listen tcp://127.0.0.1:1 --key "$N/keys/vn.broker.key" \
  --directory "$N/directory" --authority "$N/authority/authority.pub" --admin 0.0.0.0:9740 \
  --check-config
expect_contains "$T/err" "not a loopback address"
expect_contains "$T/err" "TLS is not configured"
expect_exit 1 "$CASENETD" --data "$N/data" --listen tcp://127.0.0.1:1 --key "$N/keys/vn.broker.key" \
  --directory "$N/directory" --authority "$N/authority/authority.pub" --admin 127.0.0.1 \
  --check-config
expect_contains "$T/err" "expected HOST:PORT"

step "metrics scraped during Submits: the Submit OK counter moves by exactly N"
broker_args=(--admin "$ADMIN" --blob-quota 4MB)
start_broker
wait_ready 200
"$PY" "$PROBE" scrape "$URL" >"$T/scrape"
before=$(value casenet_requests_total 'code="OK",type="submit"')
before=${before:-0}
write_referral "$T/referral.json"
n=12
pids=()
for _ in $(seq 1 "$n"); do
  "$CASENET" send --home "$N/home/vn.hotline111" --to vn.police.a05 --kind referral \
    --urgency emergency <"$T/referral.json" >/dev/null 2>&1 &
  pids+=($!)
done
# scraped while they run: every scrape parses
for _ in 1 2 3 4 5; do "$PY" "$PROBE" scrape "$URL" >/dev/null; done
for p in "${pids[@]}"; do wait "$p" || fail "a send failed"; done
"$PY" "$PROBE" scrape "$URL" >"$T/scrape"
after=$(value casenet_requests_total 'code="OK",type="submit"')
[ "$after" = "$((before + n))" ] || fail "submit OK counter $before -> $after, expected +$n"
lat=$(value casenet_submit_commit_latency_seconds_count '')
[ "${lat%.*}" -ge "$n" ] || fail "latency histogram counted $lat Submits"
[ -n "$(value casenet_batch_size_bucket 'le="+Inf"')" ] || fail "no batch size histogram"
for m in casenet_database_size_bytes casenet_wal_size_bytes casenet_disk_free_bytes \
  casenet_directory_version casenet_directory_expiry_seconds casenet_audit_tree_size; do
  [ -n "$(value "$m" '')" ] || fail "no $m"
done
# the backlog per member: bounded by the directory, the police inbox holds n
for _ in $(seq 1 100); do
  "$PY" "$PROBE" scrape "$URL" >"$T/scrape"
  [ "$(value casenet_member_inbox_backlog_messages 'member="vn.police.a05"')" = "$n" ] && break
  sleep 0.1
done
[ "$(value casenet_member_inbox_backlog_messages 'member="vn.police.a05"')" = "$n" ] ||
  fail "backlog of vn.police.a05 is not $n"
expect_not_contains "$T/scrape" "message_id"

step "blob metrics: chunks and bytes up and down, a quota refusal, the blobs held"
head -c 2500000 /dev/urandom >"$T/evidence.bin" # 3 chunks: 2,500,051 bytes sealed
head -c 2000000 /dev/urandom >"$T/second.bin"   # passes the 4 MiB quota beside it
expect_exit 0 "$CASENET" send --home "$N/home/vn.hotline111" --to vn.police.a05 --kind referral \
  --attach "$T/evidence.bin" <"$T/referral.json"
att=$(head -n 1 "$T/out")
mkdir "$T/saved"
expect_exit 0 "$CASENET" read "$att" --home "$N/home/vn.police.a05" --save-attachments "$T/saved"
"$CASENET" send --home "$N/home/vn.hotline111" --to vn.police.a05 --kind referral \
  --attach "$T/second.bin" <"$T/referral.json" >"$T/out" 2>"$T/err" && fail "the quota let it in"
expect_contains "$T/err" "QUOTA_EXCEEDED"
# exact values from the text itself (the parser's output rounds to 6 digits);
# the gauges change at the end of the next sweep pass (one every 5 s when idle)
for _ in $(seq 1 150); do
  "$PY" "$PROBE" status "$URL" /metrics >"$T/metrics.txt"
  grep -qx "casenet_blobs_stored 1" "$T/metrics.txt" && break
  sleep 0.1
done
for want in "casenet_blob_chunks_uploaded_total 3" "casenet_blob_uploaded_bytes_total 2500051" \
  "casenet_blob_chunks_downloaded_total 3" "casenet_blob_downloaded_bytes_total 2500051" \
  "casenet_blob_quota_refusals_total 1" "casenet_blobs_stored 1" \
  "casenet_blob_stored_bytes 2500051"; do
  grep -qx "$want" "$T/metrics.txt" || fail "no line '$want' in /metrics"
done

step "health: 200 with JSON; other paths 404, other methods 405"
expect_exit 0 "$PY" "$PROBE" status "$URL" /healthz
[ "$(head -n 1 "$T/out")" = 200 ] || fail "/healthz not 200"
expect_contains "$T/out" '"status":"ok"'
expect_exit 0 "$PY" "$PROBE" status "$URL" /nothing
[ "$(head -n 1 "$T/out")" = 404 ] || fail "/nothing not 404"
expect_exit 0 "$PY" "$PROBE" method "$URL" /metrics POST
[ "$(head -n 1 "$T/out")" = 405 ] || fail "POST /metrics not 405"

step "readyz fails when the directory expires within a day (after SIGHUP)"
"$CASENET" keygen vn.extra --out "$N/keys" >/dev/null
"$CASENET" admin add --authority "$N/authority/authority.key" --directory "$N/directory" \
  --member "$N/keys/vn.extra.pub" --role responder --name "Extra" --valid-days 1 >/dev/null
kill -HUP "$broker_pid"
wait_ready 503
expect_contains "$T/ready" '"check":"directory"'
expect_contains "$T/ready" "publish a new directory"
stop_broker

step "readyz fails when the free disk is below the reserve"
printf '[limits]\nmin_free_mb = 1048576\n' >"$T/reserve.ini"
broker_args=(--admin "$ADMIN" --config "$T/reserve.ini")
start_broker
wait_ready 503
expect_contains "$T/ready" '"check":"disk"'
stop_broker

step "sd_notify: READY=1, WATCHDOG=1 from the loop, none while stopped, STOPPING=1"
expect_exit 0 "$PY" "$PROBE" notify "$T/notify.sock" 1000000 -- "$CASENETD" --data "$N/data" \
  --listen "tcp://127.0.0.1:$((20000 + RANDOM % 40000))" --key "$N/keys/vn.broker.key" \
  --directory "$N/directory" --authority "$N/authority/authority.pub"
expect_contains "$T/out" "no WATCHDOG=1 while stopped"
expect_contains "$T/out" "STOPPING=1"
echo "PASS"
