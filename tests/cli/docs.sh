#!/usr/bin/env bash
# docs.sh - every command block of README.md and docs/cli.md runs as written
# (issue 12, item 11), against the built casenet and casenetd.
#
# What counts: fenced blocks whose info string is `sh` (run as a script) or
# `console` (the `$ ` lines run, each with the lines that complete it; the
# other lines are sample output and are not compared). Each document runs as
# one shell session (set -euo pipefail) in a temporary directory, its blocks
# in order, so later blocks use what earlier ones made. Indented blocks are
# usage synopses and sample output, not commands; any other fenced block must
# name its language (json, ...). The test reads one marker, an HTML comment on
# the line before a block:
#   <!-- docs-test: skip (REASON) -->   not run: needs root, installs
#                                       packages, runs for long (at most 4)
#   <!-- docs-test: file NAME -->       not run: written to NAME, for the
#                                       commands after it
# Placeholders are mapped, nothing else is changed: /secure and
# /var/lib/casenetd are directories under the session's temporary directory,
# HOME is the temporary directory (so ~/.casenet is too), port 7400 is a free
# port and broker.example and casenet.example.vn are 127.0.0.1. Background
# jobs a session starts (casenetd ... &) are stopped at its end.
#
# The documents also stand alone: every *.md file they name exists in the
# repository (no design brief or notes kept elsewhere).
# shellcheck source=tests/cli/lib.sh
source "$(dirname "$0")/lib.sh"
command -v jq >/dev/null || fail "jq is required (Debian package jq)"
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CASENETD=${CASENETD:-${CASENET_BINARY_DIR:-$(dirname "$CASENET")/../..}/broker/casenetd}
[ -x "$CASENETD" ] || fail "casenetd not found at $CASENETD"
BIN=$T/bin
mkdir -p "$BIN"
ln -s "$CASENET" "$BIN/casenet"
ln -s "$CASENETD" "$BIN/casenetd"
SKIP_MAX=4

# extract DOC OUTDIR: writes OUTDIR/script.sh (the commands) and the files
# of `file` markers; prints "skip REASON" lines for the skipped blocks.
extract() {
  local doc=$1 out=$2 line marker="" in=0 lang="" body="" cmd="" n=0
  : >"$out/script.sh"
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    if [ "$in" = 0 ]; then
      if [[ $line =~ ^\`\`\`([a-z]*)$ ]]; then
        in=1 lang=${BASH_REMATCH[1]} body=""
        [ -n "$lang" ] || fail "$doc:$n: a fenced block without a language"
        continue
      fi
      if [[ $line =~ ^\<\!--\ docs-test:\ (.*)\ --\>$ ]]; then
        marker=${BASH_REMATCH[1]}
      elif [ -n "$line" ]; then
        marker=""
      fi
      continue
    fi
    if [ "$line" != '```' ]; then
      body+="$line"$'\n'
      continue
    fi
    in=0
    case "$marker" in
    skip\ \(*\)) echo "skip $doc: ${marker#skip }" ;;
    file\ *) printf '%s' "$body" >"$out/${marker#file }" ;;
    "")
      if [ "$lang" = sh ]; then
        printf '%s' "$body" >>"$out/script.sh"
      elif [ "$lang" = console ]; then
        cmd=""
        while IFS= read -r line; do
          if [ -n "$cmd" ]; then
            cmd+=$'\n'"$line"
          elif [[ $line == '$ '* ]]; then
            cmd=${line#\$ }
          else
            continue # sample output
          fi
          if bash -n <<<"$cmd" 2>/dev/null; then
            printf '%s\n' "$cmd" >>"$out/script.sh"
            cmd=""
          fi
        done <<<"$body"
        [ -z "$cmd" ] || fail "$doc: an incomplete command in a console block: $cmd"
      fi
      ;;
    *) fail "$doc: unknown docs-test marker '$marker'" ;;
    esac
    marker=""
  done <"$doc"
  [ "$in" = 0 ] || fail "$doc: an unterminated fenced block"
}

# run_doc DOC: extracts DOC's commands and runs them in a fresh directory.
run_doc() {
  local doc=$1 name dir port
  name=$(basename "$doc" .md)
  dir=$T/$name
  mkdir -p "$dir/work" "$dir/secure" "$dir/var/lib"
  extract "$SRC/$doc" "$dir/work" >"$dir/skips"
  cat "$dir/skips"
  [ -s "$dir/work/script.sh" ] || fail "$doc: no command block found"
  port=$((20000 + RANDOM % 40000))
  sed -i -e "s|/secure/|$dir/secure/|g" -e "s|/var/lib/casenetd|$dir/var/lib/casenetd|g" \
    -e "s|tcp://0\.0\.0\.0:7400|tcp://127.0.0.1:$port|g" \
    -e "s#\(broker\.example\|casenet\.example\.vn\):7400#127.0.0.1:$port#g" "$dir/work/script.sh"
  step "$doc: $(grep -cve '^\s*\(#.*\)\?$' "$dir/work/script.sh") command lines"
  local rc=0
  (
    cd "$dir/work"
    export HOME=$dir PATH=$BIN:$PATH
    trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT
    set -euo pipefail
    # shellcheck disable=SC1091 # the extracted commands
    source ./script.sh
  ) >"$T/out" 2>"$T/err" </dev/null || rc=$?
  if [ "$rc" != 0 ]; then
    echo "--- commands of $doc:" >&2
    cat -n "$dir/work/script.sh" >&2
    fail "$doc: its command blocks exit $rc (output below)"
  fi
}

step "README.md and docs/cli.md name no document outside the repository"
for doc in README.md docs/cli.md; do
  while read -r ref; do
    [ -e "$SRC/$ref" ] || [ -e "$SRC/$(dirname "$doc")/$ref" ] ||
      [ -n "$(find "$SRC" -path "$SRC/build" -prune -o -name "$(basename "$ref")" -print -quit)" ] ||
      fail "$doc names $ref, which is not in the repository"
  done < <(grep -oE '[A-Za-z0-9_./-]+\.md\b' "$SRC/$doc" | sort -u)
done

run_doc README.md
run_doc docs/cli.md
skips=$(cat "$T/README/skips" "$T/cli/skips" | wc -l)
[ "$skips" -le "$SKIP_MAX" ] || fail "$skips blocks skipped, at most $SKIP_MAX: make them run"
echo "docs.sh: all passed ($skips blocks marked not to run)"
