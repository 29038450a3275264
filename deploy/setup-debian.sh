#!/usr/bin/env bash
# setup-debian.sh - installs what casenet needs to build, test and run on
# Debian 12 (bookworm). Uses sudo when not run as root. Safe to run again.
set -euo pipefail
packages=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libsodium-dev
  libsqlite3-dev sqlite3 libjansson-dev libcmocka-dev libinih-dev
  jq valgrind procps libmicrohttpd-dev libsystemd-dev python3-prometheus-client
  libpq-dev postgresql-15
  chromium chromium-driver python3-selenium
  python3-zmq python3-nacl python3-protobuf
  scdoc dpkg-dev file lintian debootstrap
)
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
# The browser tests' chromedriver reaches chromium at "localhost". Every
# installed Debian system resolves it from /etc/hosts; a bare debootstrap
# root has no such file, so it gets the two standard loopback lines.
if ! getent hosts localhost >/dev/null; then
  echo "setup-debian: localhost does not resolve; adding it to /etc/hosts" >&2
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' |
    "${sudo[@]}" tee -a /etc/hosts >/dev/null
fi
# Every installed Debian system has / at mode 0755. A root made with mktemp
# (a bare debootstrap chroot) may be 0700, and then no unprivileged user can
# run a program: the PostgreSQL tests run their server as such a user.
if [ "$(stat -c %a /)" != 755 ] && [ "$(stat -c %u /)" = 0 ]; then
  echo "setup-debian: / is mode $(stat -c %a /), not 755: unprivileged users could not run" \
    "programs; setting it to 755" >&2
  "${sudo[@]}" chmod 755 /
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "setup-debian: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
