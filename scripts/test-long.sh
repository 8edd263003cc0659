#!/bin/sh
# test-long.sh - the long tier of shared/RELIABILITY.md: every tests/reliability program with
# JQ_LONG=1 (full counts: T1 50k jobs / 20 kills / 8 workers, T2 200 power cuts and 200 torn
# syncs, T3 64 x 160 requests, T4 1,000 leases, T10 20 seeds x 10,000 requests, T12 1M jobs,
# T13/T14 the PostgreSQL cells at full length, T18 1 GiB offered and 900 slow connections),
# then 60 s of libFuzzer per fuzz target (scripts/fuzz.sh).
#
# Three lanes run side by side (about 70 min on 2 cores instead of 2 h): T10's random-fault
# seeds 1-10 (with the rest of test_fsynceio), seeds 11-20 and then the fuzzers, and every
# other program in turn. ASan+UBSan build in build-test/ (as make test). Each program's
# output is in build-test/long/NAME.log; the figures of all of them in build-test/test-long.log.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$ROOT/build-test
cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Debug -DJOBQ_SANITIZE=ON -DJOBQ_TESTING=ON >/dev/null
cmake --build "$B" -j"${JOBS:-2}"
L=$B/long
rm -rf "$L"
mkdir -p "$L"

# run NAME [VAR=value ...] PROGRAM [ARGS ...]: one program at full counts, its exit status
# appended to its log
run() {
    name=$1
    shift
    echo "== $name (JQ_LONG=1 $*)" >"$L/$name.log"
    st=0
    env JQ_LONG=1 JQ_TEST_TIMEOUT=6000 "$@" >>"$L/$name.log" 2>&1 || st=$?
    echo "exit $st" >>"$L/$name.log"
}

lane1() {
    run reliability_test_fsynceio JQ_T10_SEEDS=1-10 "$B/reliability_test_fsynceio"
}
lane2() {
    run reliability_test_fsynceio_seeds_11_20 JQ_T10_SEEDS=11-20 \
        "$B/reliability_test_fsynceio" t10_random
    st=0
    FUZZ_OUT=$B/fuzz "$ROOT/scripts/fuzz.sh" >"$L/fuzz.log" 2>&1 || st=$?
    echo "exit $st" >>"$L/fuzz.log"
}
lane3() {
    for t in "$B"/reliability_test_*; do
        n=$(basename "$t")
        [ "$n" = reliability_test_fsynceio ] || run "$n" "$t"
    done
}
t0=$(date +%s)
lane1 &
lane2 &
lane3 &
wait

LOG=$B/test-long.log
fail=0
for f in "$L"/*.log; do
    grep -v '^  (http' "$f" | grep -E '^==|^\[|t[0-9]+|ledger|kill|VmRSS|seed|ok:|FAIL|exit' || true
    grep -q '^exit 0$' "$f" || { echo "FAILED: $(basename "$f" .log)"; fail=1; }
done >"$LOG"
cat "$LOG"
echo "test-long: $( [ $fail = 0 ] && echo passed || echo FAILED ) in $(( $(date +%s) - t0 )) s" \
     "(figures: $LOG; each program: $L/)" | tee -a "$LOG"
exit $fail
