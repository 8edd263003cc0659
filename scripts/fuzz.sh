#!/bin/sh
# fuzz.sh - T19: builds each tests/fuzz/fuzz_*.c with clang -fsanitize=fuzzer,address,undefined
# against the jq_core sources and runs it for FUZZ_SECONDS (default 60) from its seed corpus
# (tests/fuzz/corpus/<target>/; new inputs go to build-fuzz/corpus/<target>, crashes to
# build-fuzz/crashes/). Prints executions per target; exit 1 on any crash, leak or UB.
#   scripts/fuzz.sh [target ...]       FUZZ_SECONDS=600 scripts/fuzz.sh fuzz_cron
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${FUZZ_OUT:-$ROOT/build-fuzz}
SECS=${FUZZ_SECONDS:-60}
CC=${FUZZ_CC:-clang}
command -v "$CC" >/dev/null || { echo "fuzz.sh: $CC not found (apt-get install clang)"; exit 2; }
mkdir -p "$OUT/crashes"
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
        -I$ROOT/src -I$ROOT/include $(pkg-config --cflags jansson libxxhash libsodium)"
LIBS="$(pkg-config --libs jansson libxxhash libsodium) -lm -lpthread"
SRC="$ROOT/src/common/*.c $ROOT/src/core/*.c"
targets=${*:-$(cd "$ROOT/tests/fuzz" && ls fuzz_*.c | sed 's/\.c$//')}
fail=0
for t in $targets; do
    echo "== $t: build"
    # shellcheck disable=SC2086
    $CC $CFLAGS -o "$OUT/$t" "$ROOT/tests/fuzz/$t.c" $SRC $LIBS
    mkdir -p "$OUT/corpus/$t"
    echo "== $t: ${SECS}s"
    if "$OUT/$t" -max_total_time="$SECS" -timeout=2 -rss_limit_mb=512 -max_len=4096 \
        -artifact_prefix="$OUT/crashes/$t-" -print_final_stats=1 \
        "$OUT/corpus/$t" "$ROOT/tests/fuzz/corpus/$t" >"$OUT/$t.log" 2>&1; then
        execs=$(grep -m1 'stat::number_of_executed_units' "$OUT/$t.log" | awk '{print $2}')
        echo "   ok: $execs executions, corpus $(ls "$OUT/corpus/$t" | wc -l) new inputs"
    else
        echo "   FAILED: see $OUT/$t.log and $OUT/crashes/"; tail -30 "$OUT/$t.log"; fail=1
    fi
done
exit $fail
