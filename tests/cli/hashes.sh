#!/usr/bin/env bash
# hashes.sh - the hash bank (docs/hashbank.md) over a real broker: the
# hotline contributes the hashes of files and a CSV list to a platform, the
# platform imports, lists and exports them; a retraction removes an entry;
# a second import changes nothing; the platform's feedback reaches the
# hotline; a platform that contributes is refused; bad values are refused
# naming the line.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/broker.sh"

N=$T/net
make_network "$N"
"$CASENET" keygen vn.platform.x --out "$N/keys" >/dev/null
"$CASENET" admin add --authority "$N/authority/authority.key" --directory "$N/directory" \
  --member "$N/keys/vn.platform.x.pub" --role platform --group platforms \
  --name "Example platform" >/dev/null
"$CASENET" init --home "$N/home/vn.platform.x" --key "$N/keys/vn.platform.x.key" \
  --authority "$N/authority/authority.pub" --directory "$N/directory" >/dev/null
start_broker
for id in vn.hotline111 vn.police.a05 vn.platform.x; do
  grep -q '^broker=' "$N/home/$id/state" || echo "broker=$BROKER_ENDPOINT" >>"$N/home/$id/state"
  sed -i "s|^broker=.*|broker=$BROKER_ENDPOINT|" "$N/home/$id/state"
  "$CASENET" directory pull --home "$N/home/$id" >/dev/null || fail "directory pull $id"
done
HOT=$N/home/vn.hotline111
PLAT=$N/home/vn.platform.x
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

step "the hotline contributes the hashes of a file (computed locally)"
: >"$T/empty.bin"
printf 'abc' >"$T/abc.bin"
expect_exit 0 "$CASENET" hashes contribute --home "$HOT" --to @platforms \
  --category baseline --reference HN-2026-0001 "$T/empty.bin" "$T/abc.bin"
expect_contains "$T/err" "contributed 6 hashes to 1 recipient"

step "and a CSV list (header, uppercase hex, a vendor type, rows with their category)"
# Its first row is abc.bin's sha256 again: a newer category for that entry.
cat >"$T/list.csv" <<CSV
signal_type,signal_value,category
sha256,BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD,nationally-illegal
pdq,f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22,baseline
vendor:photodna,AAECAwQFBgc=,not-illegal
CSV
expect_exit 0 "$CASENET" hashes contribute --home "$HOT" --to vn.platform.x --csv "$T/list.csv"

step "the platform imports: every entry, each message once, acknowledged"
expect_exit 0 "$CASENET" hashes import --home "$PLAT"
expect_contains "$T/out" "2 hash share messages applied"
expect_exit 0 "$CASENET" hashes list --home "$PLAT"
expect_contains "$T/out" "sha256   $EMPTY_SHA256 baseline"
expect_contains "$T/out" "md5      d41d8cd98f00b204e9800998ecf8427e"
expect_contains "$T/out" "sha1     a9993e364706816aba3e25717850c26c9cd0d89d"
expect_contains "$T/out" "HN-2026-0001"
expect_exit 0 "$CASENET" hashes stats --home "$PLAT" --json
jq -e '.live == 8 and .baseline == 6 and .nationally_illegal == 1 and .not_illegal == 1
  and .messages == 2 and .contributors == 1' "$T/out" >/dev/null || fail "stats: $(cat "$T/out")"
expect_exit 0 "$CASENET" inbox --home "$PLAT" --state delivered
[ "$(grep -c hash-share "$T/out")" = 2 ] || fail "import did not acknowledge both messages"

step "export: CSV (the exchange format) and JSON Lines"
expect_exit 0 "$CASENET" hashes export --home "$PLAT"
head -n 1 "$T/out" | grep -qx 'signal_type,signal_value,category' || fail "no CSV header"
expect_contains "$T/out" "sha256,ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad,nationally-illegal"
expect_contains "$T/out" "vendor:photodna,AAECAwQFBgc=,not-illegal"
[ "$(wc -l <"$T/out")" = 9 ] || fail "CSV export: $(cat "$T/out")"
cp "$T/out" "$T/export.csv"
expect_exit 0 "$CASENET" hashes export --home "$PLAT" --format jsonl --category baseline
[ "$(wc -l <"$T/out")" = 6 ] || fail "JSON Lines export: $(cat "$T/out")"
jq -e -s 'all(.[]; .contributor == "vn.hotline111" and .category == "baseline")' "$T/out" \
  >/dev/null || fail "JSON Lines: $(cat "$T/out")"
jq -e -s 'map(select(.signal_type == "pdq")) | .[0].signal_value
  == "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"' "$T/out" >/dev/null \
  || fail "no pdq entry in JSON Lines"

step "the platform matches: files exactly, pdq by distance (31 matches, 32 does not)"
expect_exit 0 "$CASENET" hashes match --home "$PLAT" "$T/abc.bin"
expect_contains "$T/out" "abc.bin: sha1:a9993e364706816aba3e25717850c26c9cd0d89d (1 contributor)"
printf 'something else' >"$T/other.bin"
expect_exit 1 "$CASENET" hashes match --home "$PLAT" "$T/other.bin"
[ ! -s "$T/out" ] || fail "a non-match printed: $(cat "$T/out")"
PDQ=f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22
# flip N: the pdq value with its first N bits inverted
flip() { python3 -c 'import sys; v=int(sys.argv[1],16); n=int(sys.argv[2]); print("%064x" % (v ^ (((1<<n)-1) << (256-n))))' "$PDQ" "$1"; }
expect_exit 0 "$CASENET" hashes match --home "$PLAT" --hash "pdq:$(flip 31)"
expect_contains "$T/out" "pdq:$PDQ distance 31"
expect_exit 1 "$CASENET" hashes match --home "$PLAT" --hash "pdq:$(flip 32)"
expect_exit 1 "$CASENET" hashes match --home "$PLAT" --hash "pdq:$(flip 20)" --max-distance 19
expect_exit 0 "$CASENET" hashes match --home "$PLAT" --hash "vendor:photodna:AAECAwQFBgc=" \
  --hash "pdq:$(flip 5)"
[ "$(wc -l <"$T/out")" = 2 ] || fail "two matches expected: $(cat "$T/out")"
expect_exit 2 "$CASENET" hashes match --home "$PLAT" --hash "pdq:$PDQ" --max-distance 32
expect_contains "$T/err" "--max-distance wants 0..31"

step "a retraction removes the entry; importing again changes nothing"
expect_exit 0 "$CASENET" hashes contribute --home "$HOT" --to vn.platform.x --retract "$T/empty.bin"
expect_contains "$T/err" "retracted 3 hashes"
expect_exit 0 "$CASENET" hashes import --home "$PLAT"
expect_contains "$T/out" "1 hash share message applied"
expect_exit 0 "$CASENET" hashes list --home "$PLAT"
expect_not_contains "$T/out" "$EMPTY_SHA256"
expect_exit 0 "$CASENET" hashes import --home "$PLAT"
expect_contains "$T/out" "0 hash share messages applied"
expect_exit 0 "$CASENET" hashes stats --home "$PLAT" --json
jq -e '.live == 5 and .retracted == 3 and .messages == 3' "$T/out" >/dev/null \
  || fail "stats after the retraction: $(cat "$T/out")"

step "a category change back: the newer entry wins"
printf 'sha256,ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad,baseline\n' \
  >"$T/change.csv"
expect_exit 0 "$CASENET" hashes contribute --home "$HOT" --to vn.platform.x --csv "$T/change.csv"
expect_exit 0 "$CASENET" hashes import --home "$PLAT"
expect_exit 0 "$CASENET" hashes export --home "$PLAT"
expect_contains "$T/out" "sha256,ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad,baseline"

step "feedback from the platform reaches the contributor"
expect_exit 0 "$CASENET" hashes feedback --home "$PLAT" --to vn.hotline111 \
  --match "sha1:a9993e364706816aba3e25717850c26c9cd0d89d" --count 4
expect_exit 0 "$CASENET" hashes feedback --home "$PLAT" --to vn.hotline111 \
  --false-positive "pdq:f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22" \
  --note "a stock logo"
expect_exit 0 "$CASENET" hashes import --home "$HOT"
expect_contains "$T/out" "2 hash share messages applied"
expect_exit 0 "$CASENET" hashes list --home "$HOT" --feedback
expect_contains "$T/out" "vn.platform.x    match x4 sha1:a9993e364706816aba3e25717850c26c9cd0d89d"
expect_contains "$T/out" "false-positive pdq:f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22  a stock logo"
expect_exit 0 "$CASENET" hashes stats --home "$HOT" --json
jq -e '.matches == 4 and .false_positives == 1' "$T/out" >/dev/null \
  || fail "contributor's stats: $(cat "$T/out")"

step "a platform may not contribute (refused before anything is sent)"
expect_exit 1 "$CASENET" hashes contribute --home "$PLAT" --to vn.hotline111 \
  --category baseline "$T/abc.bin"
expect_contains "$T/err" "vn.platform.x (platform) may not contribute hashes: only intake, responder or gateway may"
expect_exit 1 "$CASENET" hashes feedback --home "$HOT" --to vn.coord --match "sha1:a9993e364706816aba3e25717850c26c9cd0d89d"
expect_contains "$T/err" "hash-share messages go to"

step "bad values are refused naming the line; nothing is sent"
printf 'signal_type,signal_value,category\nmd5,d41d8cd98f00b204e9800998ecf8427e,baseline\nsha256,abc,baseline\n' \
  >"$T/bad.csv"
expect_exit 1 "$CASENET" hashes contribute --home "$HOT" --to vn.platform.x --csv "$T/bad.csv"
expect_contains "$T/err" "bad.csv:3: a sha256 value is 64 lowercase hex digits"
printf 'md5,d41d8cd98f00b204e9800998ecf8427e,illegal\n' >"$T/bad.csv"
expect_exit 1 "$CASENET" hashes contribute --home "$HOT" --to vn.platform.x --csv "$T/bad.csv"
expect_contains "$T/err" "bad.csv:1: unknown category 'illegal'"
printf 'crc32,0000,baseline\n' >"$T/bad.csv"
expect_exit 1 "$CASENET" hashes contribute --home "$HOT" --to vn.platform.x --csv "$T/bad.csv"
expect_contains "$T/err" "bad.csv:1: unknown signal type 'crc32'"
expect_exit 2 "$CASENET" hashes feedback --home "$PLAT" --to vn.hotline111 --match "pdq:00"
expect_contains "$T/err" "a pdq value is 64 lowercase hex digits"
expect_exit 2 "$CASENET" hashes contribute --home "$HOT" --to vn.platform.x "$T/abc.bin"
expect_contains "$T/err" "--category is required"
expect_exit 0 "$CASENET" hashes stats --home "$PLAT" --json
jq -e '.messages == 4' "$T/out" >/dev/null || fail "a refused contribution reached the platform"

step "an exported list is a valid contribution again"
expect_exit 0 "$CASENET" hashes contribute --home "$N/home/vn.police.a05" --to vn.platform.x \
  --csv "$T/export.csv"
expect_exit 0 "$CASENET" hashes import --home "$PLAT"
expect_exit 0 "$CASENET" hashes stats --home "$PLAT" --json
jq -e '.contributors == 2' "$T/out" >/dev/null || fail "second contributor: $(cat "$T/out")"
step "casenet watch applies a hash share it receives, then hands it over"
printf 'md5,0123456789abcdef0123456789abcdef,baseline\n' >"$T/one.csv"
expect_exit 0 "$CASENET" hashes contribute --home "$HOT" --to vn.platform.x --csv "$T/one.csv"
id=$(cat "$T/out")
mkdir "$T/spool"
expect_exit 0 "$CASENET" watch --home "$PLAT" --spool "$T/spool" --once
[ -f "$T/spool/$id.json" ] || fail "watch did not hand the hash share over"
expect_contains "$T/err" "hash share $id from vn.hotline111: 1 added"
expect_exit 0 "$CASENET" hashes list --home "$PLAT"
expect_contains "$T/out" "0123456789abcdef0123456789abcdef"
step "match --stdin answers one query per line in one process"
printf 'pdq:%s\nsha1:a9993e364706816aba3e25717850c26c9cd0d89d\n\nmd5:00000000000000000000000000000000\nbogus\n' \
  "$(flip 5)" >"$T/queries"
"$CASENET" hashes match --home "$PLAT" --stdin <"$T/queries" >"$T/out" 2>"$T/err" \
  || fail "match --stdin: $(cat "$T/err")"
expect_contains "$T/out" "pdq:$(flip 5): pdq:$PDQ distance 5"
# two entries each: the hotline's and the police's (the exported list)
expect_contains "$T/out" "pdq:$(flip 5): 2 matched"
expect_contains "$T/out" "sha1:a9993e364706816aba3e25717850c26c9cd0d89d: 2 matched"
expect_contains "$T/out" "md5:00000000000000000000000000000000: no match"
expect_contains "$T/out" "bogus: error:"
[ "$(wc -l <"$T/out")" = 7 ] || fail "match --stdin: $(cat "$T/out")"

step "a foreign list: imported with its source, not redistributed unless allowed"
cat >"$T/ncmec.csv" <<CSV
signal_type,signal_value,category
md5,00112233445566778899aabbccddeeff,baseline
sha1,00112233445566778899aabbccddeeff00112233
CSV
expect_exit 0 "$CASENET" hashes import --home "$HOT" --csv "$T/ncmec.csv" --source ncmec-2026-12 \
  --category nationally-illegal
expect_contains "$T/out" "2 entries imported from $T/ncmec.csv as list:ncmec-2026-12 (0 unchanged); redistributed to: nobody"
expect_exit 0 "$CASENET" hashes export --home "$HOT" --format jsonl
jq -e -s 'map(select(.contributor == "list:ncmec-2026-12")) | length == 2 and
  all(.[]; .imported != null) and (map(.category) | sort == ["baseline", "nationally-illegal"])' \
  "$T/out" >/dev/null || fail "provenance: $(cat "$T/out")"
expect_exit 1 "$CASENET" hashes contribute --home "$HOT" --to @platforms --source ncmec-2026-12
expect_contains "$T/err" "the list 'ncmec-2026-12' may not be redistributed to @platforms"
expect_exit 1 "$CASENET" hashes contribute --home "$HOT" --to @platforms --source nothing
expect_contains "$T/err" "no imported list is called 'nothing'"
expect_exit 2 "$CASENET" hashes import --home "$HOT" --csv "$T/ncmec.csv" --source "a:b" --category baseline
expect_contains "$T/err" "--source wants 1..64 characters"
expect_exit 0 "$CASENET" hashes import --home "$HOT" --csv "$T/ncmec.csv" --source ncmec-2026-12 \
  --category nationally-illegal --redistribute-to @platforms
expect_contains "$T/out" "redistributed to: @platforms"
expect_exit 1 "$CASENET" hashes contribute --home "$HOT" --to vn.platform.x --source ncmec-2026-12
expect_exit 0 "$CASENET" hashes contribute --home "$HOT" --to @platforms --source ncmec-2026-12
expect_contains "$T/err" "contributed 2 hashes to 1 recipient"
expect_exit 0 "$CASENET" hashes import --home "$PLAT"
expect_exit 0 "$CASENET" hashes list --home "$PLAT"
expect_contains "$T/out" "00112233445566778899aabbccddeeff00112233 nationally-illegal vn.hotline111"
expect_contains "$T/out" "list:ncmec-2026-12"

step "stats per source: each contributor and imported list by category, with its last update"
expect_exit 0 "$CASENET" hashes stats --home "$HOT" --json
jq -e '(.sources | map(select(.source == "list:ncmec-2026-12")) | .[0]
    | .live == 2 and .baseline == 1 and .nationally_illegal == 1 and .retracted == 0
      and (.last_update | test("UTC")))' "$T/out" >/dev/null \
  || fail "the hotline's sources: $(cat "$T/out")"
expect_exit 0 "$CASENET" hashes stats --home "$PLAT" --json
jq -e '(.sources | map(.source) | sort) == ["vn.hotline111", "vn.police.a05"]
  and (.sources | map(select(.source == "vn.hotline111")) | .[0] | .retracted == 3)
  and ([.sources[].live] | add) == .live' "$T/out" >/dev/null \
  || fail "the platform's sources: $(cat "$T/out")"
expect_exit 0 "$CASENET" hashes stats --home "$PLAT"
expect_contains "$T/out" "SOURCE"
grep -q '^vn.police.a05 ' "$T/out" || fail "no police row: $(cat "$T/out")"

step "a match is recorded (the entry, not the file name unless asked); feedback sent too"
expect_exit 0 "$CASENET" hashes match --home "$PLAT" --record-name "$T/abc.bin"
expect_exit 0 "$CASENET" hashes match --home "$PLAT" --no-record --hash "pdq:$(flip 3)"
expect_exit 2 "$CASENET" hashes match --home "$PLAT" --no-record --record-name "$T/abc.bin"
# one row per entry hit (md5, sha1, sha256 of abc.bin; each contributor's)
[ "$(sqlite3 "$PLAT/hashbank.sqlite" "SELECT count(*) FROM matches
  WHERE label = '$T/abc.bin' AND contributor = 'vn.police.a05' AND signal_type = 'sha1'")" = 1 ] \
  || fail "the match was not recorded with its name"
# earlier matches (abc.bin without --record-name, pdq, --stdin) record no name
[ "$(sqlite3 "$PLAT/hashbank.sqlite" "SELECT count(*) FROM matches WHERE label != ''
  AND label != '$T/abc.bin'")" = 0 ] || fail "a name was recorded unasked"
[ "$(sqlite3 "$PLAT/hashbank.sqlite" "SELECT count(*) FROM feedback_sent")" = 2 ] \
  || fail "the platform's feedback sent is not recorded"
[ "$(sqlite3 "$PLAT/hashbank.sqlite" "PRAGMA user_version")" = 2 ] || fail "schema version"
echo "hashes: all passed"
