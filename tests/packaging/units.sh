#!/usr/bin/env bash
# units.sh - `cmake --install` into a scratch DESTDIR puts the systemd units,
# the sysusers.d and tmpfiles.d entries and the example configuration where
# they belong, every path a unit names (programs, documentation files) is
# installed, and `systemd-analyze verify` (when this machine has it) accepts
# the installed units: no key this systemd does not know.
#   CASENET_BINARY_DIR  the build tree (set by ctest)
set -euo pipefail
build=${CASENET_BINARY_DIR:?run from ctest, or set CASENET_BINARY_DIR to the build tree}
fail() { echo "FAIL: $*" >&2; exit 1; }
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
DESTDIR=$dest cmake --install "$build" >"$dest.log" 2>&1 || { cat "$dest.log"; rm -f "$dest.log"; fail "cmake --install failed"; }
rm -f "$dest.log"
cache() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
unitdir=$(cache CASENET_SYSTEMD_UNITDIR)
bindir=$(cache CMAKE_INSTALL_PREFIX)/bin
for f in "$unitdir/casenetd.service" "$unitdir/casenet-watch@.service" \
  "$unitdir/casenet-console@.service" "$(cache CASENET_SYSUSERSDIR)/casenetd.conf" \
  "$(cache CASENET_TMPFILESDIR)/casenetd.conf" /etc/casenet/casenetd.conf /etc/casenet/policy.ini \
  "$bindir/casenetd" "$bindir/casenet"; do
  [ -e "$dest$f" ] || fail "cmake --install did not install $f"
done
echo "ok: units, sysusers.d, tmpfiles.d, configuration and programs installed"

# Every absolute path a unit runs or points to must be installed (or be part
# of the base system, like /bin/kill); /var and /etc/casenet/* are the
# operator's.
for u in "$dest$unitdir"/*.service; do
  name=$(basename "$u")
  while read -r path; do
    case $path in
      /var/* | /etc/casenet/* | /bin/kill) continue ;;
    esac
    [ -e "$dest$path" ] || fail "$name names $path, which cmake --install does not install"
  done < <(grep -E '^(Exec[A-Za-z]*|Documentation)=' "$u" | grep -oE '(file://)?/[^ ]+' |
    sed 's|^file://||' | grep -v '%')
  grep -q "^ExecStart=$bindir/" "$u" || fail "$name: ExecStart does not run a program from $bindir"
done
echo "ok: every path the units name is installed"

if ! command -v systemd-analyze >/dev/null; then
  echo "skip: systemd-analyze not on this machine (Debian: systemd); units not verified"
  exit 0
fi
# Copies of the installed units whose programs point into the DESTDIR (so
# verify finds them executable), the templates as instances.
vdir=$dest/verify
mkdir "$vdir"
for u in casenetd.service casenet-watch@.service casenet-console@.service; do
  sed "s|$bindir/|$dest$bindir/|g" "$dest$unitdir/$u" >"$vdir/${u/@./@test.}"
done
# man: links resolve in the installed man pages (built when scdoc is found)
mandir=$dest$(cache CMAKE_INSTALL_PREFIX)/share/man
man_opt=--man=yes
if [ ! -d "$mandir" ]; then
  echo "note: no man pages installed (scdoc missing); man: links not checked"
  man_opt=--man=no
fi
out=$(cd "$vdir" && MANPATH=$mandir systemd-analyze verify $man_opt casenetd.service casenet-watch@test.service \
  casenet-console@test.service 2>&1) || true
if [ -n "$out" ]; then
  echo "$out" >&2
  fail "systemd-analyze verify ($(systemd-analyze --version | head -n1)) reports the above"
fi
echo "ok: systemd-analyze verify is clean ($(systemd-analyze --version | head -n1))"
