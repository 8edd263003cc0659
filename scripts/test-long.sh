#!/bin/sh
# test-long.sh - the long tier of shared/RELIABILITY.md: the tests/reliability programs with
# JQ_LONG=1 (full counts: T1 50k jobs / 20 kills / 8 workers, T4 1,000 leases, T18 1 GiB
# offered and 900 slow connections), then 60 s of libFuzzer per fuzz target (scripts/fuzz.sh).
# ASan+UBSan build in build-test/ (as make test). Figures land in build-test/test-long.log.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=$ROOT/build-test
cmake -S "$ROOT" -B "$B" -DCMAKE_BUILD_TYPE=Debug -DJOBQ_SANITIZE=ON -DJOBQ_TESTING=ON >/dev/null
cmake --build "$B" -j"${JOBS:-2}"
LOG=$B/test-long.log
: >"$LOG"
fail=0
for t in "$B"/reliability_test_*; do
    echo "== $(basename "$t") (JQ_LONG=1)" | tee -a "$LOG"
    JQ_LONG=1 JQ_TEST_TIMEOUT=3600 "$t" 2>&1 | grep -v '^  (http' | tee -a "$LOG" | grep -E '^\[|t[0-9]+|ledger|kill|VmRSS' || true
    grep -q ' 0 failed' "$LOG" || fail=1
done
grep -E 'test\(s\), [1-9][0-9]* failed' "$LOG" && fail=1
FUZZ_OUT=$B/fuzz "$ROOT/scripts/fuzz.sh" 2>&1 | tee -a "$LOG" || fail=1
echo "test-long: $( [ $fail = 0 ] && echo passed || echo FAILED ) (log: $LOG)"
exit $fail
