#!/bin/sh
# deps.sh - install the Debian packages jobq needs that are not installed yet (apt).
set -e
PKGS="build-essential cmake pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev
      libsodium-dev libcurl4-openssl-dev libxxhash-dev sqlite3 curl libpq-dev postgresql"
# the shared cache (--cache, src/server/cache.c) and its tests (tests/server/test_cache_redis.c)
PKGS="$PKGS libhiredis-dev redis-server"
# the browser test (tests/browser): Debian's chromium, and Node.js + npm unless a node is
# already installed (NodeSource's nodejs carries its own npm and conflicts with Debian's)
PKGS="$PKGS chromium"
# fuzzing (tests/fuzz, scripts/fuzz.sh): clang with libFuzzer
PKGS="$PKGS clang libclang-rt-14-dev"
# reliability T3 (tests/reliability/test_ackfsync.c): reply-vs-fdatasync order under strace
PKGS="$PKGS strace"
# reliability T10 (tests/reliability/test_fsynceio.c): libfiu's fault-injection preloads
# (fiu-run / fiu-ctrl); T8 (test_clockjump.c): libfaketime
PKGS="$PKGS fiu-utils libfiu-dev faketime"
command -v node >/dev/null 2>&1 || PKGS="$PKGS nodejs"
command -v npm >/dev/null 2>&1 || PKGS="$PKGS npm"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq || true
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
