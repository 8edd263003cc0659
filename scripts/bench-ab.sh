#!/bin/bash
# bench-ab.sh - compare two jobqd binaries under the same noise: runs each WORKLOADS.md
# workload alternately on OLD and NEW (fresh temp database each, --sync full, 10,000 jobs
# unless BENCH_ARGS says otherwise), ROUNDS times, and prints one line per run. Alternating
# back to back is what makes the comparison fair on a shared host.
#
#   scripts/bench-ab.sh OLD_JOBQD NEW_JOBQD [w1a w1b w2 w3]
#   e.g. git worktree add /tmp/old <commit> && cmake -S /tmp/old -B /tmp/old/b \
#        -DCMAKE_BUILD_TYPE=Release && cmake --build /tmp/old/b --target jobqd
#        scripts/bench-ab.sh /tmp/old/b/jobqd build-bench/jobqd w1a w3
# Knobs: ROUNDS (2), BENCH_ARGS (--quick), BENCH_W (build-bench/bench_w).
set -u
[ $# -ge 2 ] || { sed -n 2,12p "$0"; exit 2; }
OLD=$1 NEW=$2; shift 2
WLS=${*:-w1a w1b w2 w3}
BW=${BENCH_W:-$(dirname "$0")/../build-bench/bench_w}
TOKEN=ab-admin-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
run() { # binary workload
    local d; d=$(mktemp -d /tmp/jobq-ab.XXXXXX)
    JOBQ_ADMIN_TOKEN=$TOKEN "$1" --db "$d/j.db" --host 127.0.0.1 --port 0 --port-file "$d/port" \
        --sync full --active-limit 0 --log-level warn >"$d/log" 2>&1 &
    local pid=$!
    for _ in $(seq 200); do [ -s "$d/port" ] && break; sleep 0.05; done
    "$BW" --url "http://127.0.0.1:$(cat "$d/port")" --admin-token "$TOKEN" --workload "$2" \
        --server-pid $pid ${BENCH_ARGS:---quick} | tail -n 1
    kill $pid; wait $pid 2>/dev/null; rm -rf "$d"
}
for wl in $WLS; do
    for r in $(seq "${ROUNDS:-2}"); do
        for v in old new; do
            bin=$NEW; [ $v = old ] && bin=$OLD
            run "$bin" "$wl" | python3 -c "
import json, sys
d = json.loads(sys.stdin.read())
print('%-3s %-3s %8.0f jobs/s  p50 %7.2f  p99 %8.2f ms  server %4.0f us/job  others %5.1f s  kept %s'
      % ('$v', d['workload'], d['jobs_per_s'], d['p50_ms'], d['p99_ms'],
         d['server_cpu_s'] / d['jobs'] * 1e6, d.get('others_cpu_s', 0), d.get('kept_up', '-')))"
        done
    done
done
