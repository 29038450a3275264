#!/usr/bin/env bash
# setup-debian.sh - installs what casenet needs to build, test and run on
# Debian 12 (bookworm). Uses sudo when not run as root. Safe to run again.
set -euo pipefail
packages=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libsodium-dev
  libsqlite3-dev sqlite3 libjansson-dev libcmocka-dev libinih-dev
  jq valgrind procps libmicrohttpd-dev
  chromium chromium-driver python3-selenium
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
echo "setup-debian: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
