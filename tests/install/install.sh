#!/usr/bin/env bash
# install.sh - `cmake --install` into a temporary prefix installs the shared
# libcasenet, its one public header and casenet.pc; a program outside the
# project builds against them through pkg-config and runs; the shared library
# exports casenet_* symbols only (the internals of common/ stay hidden).
set -euo pipefail
: "${CASENET_SOURCE_DIR:?}" "${CASENET_BINARY_DIR:?}"
T=$(mktemp -d "${TMPDIR:-/tmp}/casenet-install-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$CASENET_BINARY_DIR" --prefix "$T/prefix" >"$T/install.log" ||
  { cat "$T/install.log" >&2; fail "cmake --install failed"; }
pc=$(find "$T/prefix" -name casenet.pc) || true
[ -n "$pc" ] || fail "casenet.pc not installed"
[ -f "$T/prefix/include/casenet.h" ] || fail "include/casenet.h not installed"
[ "$(find "$T/prefix" -name 'casenet*.h' | wc -l)" = 1 ] || fail "an internal header was installed"
so=$(find "$T/prefix" -name 'libcasenet.so.*' | head -n 1)
[ -n "$so" ] || fail "libcasenet.so not installed"

others=$(nm -D --defined-only "$so" | awk '{print $3}' | grep -v '^casenet_' || true)
[ -z "$others" ] || fail "libcasenet exports non-API symbols: $others"

# casenet.pc names the prefix it was configured for: point it at ours
export PKG_CONFIG_PATH
PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --define-variable=prefix="$T/prefix" --cflags --libs casenet)
# shellcheck disable=SC2086
cc -std=c11 -Wall -Werror -o "$T/use_casenet" "$CASENET_SOURCE_DIR/tests/install/use_casenet.c" \
  $flags || fail "a program does not build against the installed header and casenet.pc"
libdir=$(pkg-config --define-variable=prefix="$T/prefix" --variable=libdir casenet)
out=$(LD_LIBRARY_PATH="$libdir" "$T/use_casenet") || fail "the program linked to libcasenet failed"
[ "$out" = ok ] || fail "unexpected output: $out"
# it runs against the installed library, not one in the build tree
LD_LIBRARY_PATH="$libdir" ldd "$T/use_casenet" | grep -q "$libdir/libcasenet.so" ||
  fail "the program did not load the installed libcasenet"
echo "ok: installed libcasenet, casenet.h and casenet.pc build and run a program"
