#!/usr/bin/env bash
# deb.sh - the Debian packages, end to end: builds casenet with prefix /usr in
# its own tree, makes the .debs with `cpack -G DEB`, checks them with lintian
# (no errors), installs them with apt into a fresh Debian 12 root
# (debootstrap --variant=minbase), then checks what an operator gets: the
# casenetd user, its directories, the units and configuration; generates a
# network there, runs `casenetd --check-config` and starts casenetd as the
# casenetd user on a loopback port, and a member pulls the directory from it.
#
# Needs root, debootstrap, dpkg-dev and the Debian archive, and fails
# without them; CASENET_SKIP_DEB=1 skips it (exit 77). It keeps under
# BUILD/pkg-deb the package build tree, the .debs (out/), the base root
# tarball (built once, ~1 min) and apt's downloads; the root itself is a
# temporary directory there, unmounted and removed at exit.
#   CASENET_SOURCE_DIR, CASENET_BINARY_DIR  set by ctest
set -euo pipefail
src=${CASENET_SOURCE_DIR:?run from ctest, or set CASENET_SOURCE_DIR and CASENET_BINARY_DIR}
build=${CASENET_BINARY_DIR:?run from ctest, or set CASENET_BINARY_DIR}
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $* ($SECONDS s)"; }
# 77: ctest reports the test as skipped (SKIP_RETURN_CODE)
[ "${CASENET_SKIP_DEB:-0}" = 1 ] && { echo "skip: pkg.deb (CASENET_SKIP_DEB=1)"; exit 77; }
need() { fail "$1; $2, or set CASENET_SKIP_DEB=1 to skip this test"; }
[ "$(id -u)" = 0 ] || need "pkg.deb needs root (debootstrap, chroot, mount)" "run ctest as root"
for tool in debootstrap:debootstrap dpkg-shlibdeps:dpkg-dev cpack:cmake chroot:coreutils; do
  command -v "${tool%%:*}" >/dev/null ||
    need "${tool%%:*} is missing" "install it: apt-get install ${tool#*:} (deploy/setup-debian.sh does)"
done

work=$build/pkg-deb
mkdir -p "$work/apt-archives/partial"

step "build with prefix /usr and make the packages (cpack -G DEB)"
cmake -S "$src" -B "$work/build" -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCASENET_TESTS=OFF >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "cmake configure failed"; }
cmake --build "$work/build" -j2 >"$work/build.log" 2>&1 || { tail -n 40 "$work/build.log"; fail "build failed"; }
rm -rf "$work/out"
(cd "$work/build" && cpack -G DEB -B "$work/out") >"$work/cpack.log" 2>&1 ||
  { cat "$work/cpack.log"; fail "cpack -G DEB failed"; }
debs=("$work"/out/*.deb)
[ ${#debs[@]} = 3 ] || fail "expected 3 packages (casenet, casenetd, libcasenet-dev), got: ${debs[*]##*/}"
for pkg in casenet casenetd libcasenet-dev; do
  compgen -G "$work/out/${pkg}_*.deb" >/dev/null || fail "no $pkg package in $work/out"
done
dpkg-deb -f "$work"/out/casenetd_*.deb Depends | grep -q libzmq5 ||
  fail "casenetd's Depends do not name libzmq5: dpkg-shlibdeps did not run"

if command -v lintian >/dev/null; then
  step "lintian"
  lintian --tag-display-limit 0 "${debs[@]}" >"$work/lintian.log" 2>&1 || true
  grep -E '^[WE]: ' "$work/lintian.log" || true
  ! grep -q '^E: ' "$work/lintian.log" || fail "lintian reports errors (above)"
else
  echo "note: lintian not installed; packages not linted"
fi

# mirror: the Debian archive this machine's apt uses (its first non-security URI)
mirror() {
  cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    awk '/^(URIs:|deb )/ && !/-security/ && $2 ~ /\/debian\/?$/ {print $2; exit}' || true
}
base=$work/bookworm-minbase.tar
if [ ! -f "$base" ]; then
  step "debootstrap --variant=minbase bookworm (once; cached in $base)"
  m=$(mirror)
  [ -n "$m" ] || fail "no Debian archive in this machine's apt sources for debootstrap"
  tmp=$(mktemp -d "$work/debootstrap.XXXXXX")
  if ! debootstrap --variant=minbase bookworm "$tmp" "$m" >"$work/debootstrap.log" 2>&1; then
    rm -rf --one-file-system "$tmp"
    fail "debootstrap failed, see $work/debootstrap.log"
  fi
  tar -C "$tmp" -cf "$base.part" . && mv "$base.part" "$base"
  rm -rf --one-file-system "$tmp"
fi

root=$(mktemp -d "$work/root.XXXXXX")
broker_pid=
cleanup() {
  set +e
  if [ -n "$broker_pid" ]; then
    kill "$broker_pid" 2>/dev/null
    wait "$broker_pid" 2>/dev/null
  fi
  for m in var/cache/apt/archives dev proc; do
    umount -R -l "$root/$m" 2>/dev/null || true
  done
  if grep -q " $root/" /proc/mounts; then
    echo "deb.sh: mounts remain under $root; not deleting it" >&2
  else
    rm -rf --one-file-system "$root"
  fi
}
trap cleanup EXIT
step "a fresh Debian 12 root"
tar -C "$root" -xf "$base"
chmod 0755 "$root"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
mount --bind "$work/apt-archives" "$root/var/cache/apt/archives"
# in_root CMD...: runs CMD in the root (chroot, then env, then CMD: one
# process, so a CMD started with & has $! as its pid)
chrooted=(chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin
  LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive)
in_root() { "${chrooted[@]}" "$@"; }
mkdir "$root/debs"
cp "${debs[@]}" "$root/debs/"

step "apt-get install ./*.deb (dependencies from the archive)"
in_root apt-get update -qq >"$work/apt.log" 2>&1 || { cat "$work/apt.log"; fail "apt-get update failed in the root"; }
in_root sh -c 'apt-get install -y -qq --no-install-recommends /debs/*.deb' >>"$work/apt.log" 2>&1 ||
  { tail -n 40 "$work/apt.log"; fail "apt-get install of the packages failed in a fresh Debian 12 root"; }

step "what the packages created"
in_root getent passwd casenetd >/dev/null || fail "no casenetd user after installing casenetd"
stat_is() {
  local got
  got=$(in_root stat -c '%a %U %G' "$1")
  [ "$got" = "$2" ] || fail "$1 is '$got', expected '$2' (mode owner group)"
}
stat_is /var/lib/casenetd "700 casenetd casenetd"
stat_is /etc/casenet "750 root casenetd"
for f in /etc/casenet/casenetd.conf /etc/casenet/policy.ini /lib/systemd/system/casenetd.service \
  /lib/systemd/system/casenet-watch@.service /lib/systemd/system/casenet-console@.service \
  /usr/lib/sysusers.d/casenetd.conf /usr/lib/tmpfiles.d/casenetd.conf /usr/bin/casenet \
  /usr/bin/casenetd /usr/include/casenet.h /usr/share/doc/casenetd/copyright \
  /usr/share/casenet/console/index.html; do
  [ -e "$root$f" ] || fail "$f is not installed"
done
compgen -G "$root/usr/lib/*/pkgconfig/casenet.pc" >/dev/null || fail "casenet.pc is not installed"
compgen -G "$root/usr/lib/*/libcasenet.so.0" >/dev/null || fail "libcasenet.so.0 is not installed"
# shellcheck disable=SC2016 # dpkg-query's field, not the shell's
in_root dpkg-query -W -f='${Conffiles}\n' casenetd | grep -q /etc/casenet/casenetd.conf ||
  fail "/etc/casenet/casenetd.conf is not a conffile of casenetd"
grep -q '^ExecStart=/usr/bin/casenetd ' "$root/lib/systemd/system/casenetd.service" ||
  fail "casenetd.service does not run /usr/bin/casenetd"
if [ -d "$work/build/man" ]; then
  for f in man1/casenet.1.gz man1/casenet-watch.1.gz man8/casenetd.8.gz man5/casenetd.conf.5.gz; do
    [ -e "$root/usr/share/man/$f" ] || fail "man page $f is not installed"
  done
fi
echo "ok: user casenetd, /var/lib/casenetd, /etc/casenet, units, conffiles"

step "a network, casenetd --check-config, casenetd as the casenetd user"
port=
for _ in $(seq 1 50); do
  p=$((20000 + RANDOM % 40000))
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p && break; fi
done
[ -n "$port" ] || fail "no free loopback port"
endpoint=tcp://127.0.0.1:$port
in_root sh -ec '
  mkdir /root/net && cd /root/net
  casenet admin init --out authority >/dev/null
  casenet keygen vn.broker --out keys >/dev/null
  casenet keygen vn.coord --out keys >/dev/null
  casenet admin add --authority authority/authority.key --directory directory \
    --member keys/vn.broker.pub --role broker --name broker >/dev/null
  casenet admin add --authority authority/authority.key --directory directory \
    --member keys/vn.coord.pub --role coordinator --name coordinator >/dev/null
  install -m 0600 -o casenetd -g casenetd keys/vn.broker.key /etc/casenet/broker.key
  install -m 0644 directory /etc/casenet/directory
  install -m 0644 authority/authority.pub /etc/casenet/authority.pub' ||
  fail "could not make a network with the installed casenet"
as_casenetd=(setpriv --reuid=casenetd --regid=casenetd --init-groups)
in_root "${as_casenetd[@]}" casenetd --config /etc/casenet/casenetd.conf --listen "$endpoint" \
  --check-config >"$work/check-config.log" 2>&1 ||
  { cat "$work/check-config.log"; fail "casenetd --check-config fails on the installed configuration"; }
echo "ok: casenetd --check-config"
"${chrooted[@]}" "${as_casenetd[@]}" casenetd --config /etc/casenet/casenetd.conf \
  --listen "$endpoint" >"$work/casenetd.log" 2>&1 &
broker_pid=$!
in_root casenet init --home /root/net/home --key /root/net/keys/vn.coord.key \
  --authority /root/net/authority/authority.pub --directory /root/net/directory \
  --broker "$endpoint" >/dev/null
answered=0
for _ in $(seq 1 100); do
  if in_root casenet directory pull --home /root/net/home --timeout 1 >/dev/null 2>&1; then
    answered=1 && break
  fi
  kill -0 "$broker_pid" 2>/dev/null || { cat "$work/casenetd.log"; fail "casenetd exited"; }
done
[ $answered = 1 ] || { cat "$work/casenetd.log"; fail "casenetd on $endpoint did not answer"; }
[ "$(stat -c %u "/proc/$broker_pid")" = "$(in_root id -u casenetd)" ] ||
  fail "casenetd does not run as the casenetd user"
[ "$(in_root stat -c %U /var/lib/casenetd/casenet.db)" = casenetd ] ||
  fail "the store /var/lib/casenetd/casenet.db is not the casenetd user's"
echo "ok: casenetd runs as the casenetd user on $endpoint and answers (casenet directory pull)"
kill "$broker_pid"
wait "$broker_pid" || fail "casenetd did not stop cleanly on SIGTERM"
broker_pid=
echo "ok: pkg.deb passed in $SECONDS s"
