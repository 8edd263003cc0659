#!/usr/bin/env bash
# bench.sh - the WORKLOADS.md workloads (W1a, W1b, W2, W3) against jobqd (make bench).
#
# Builds a Release tree in build-bench/, then for every workload and repetition starts a
# fresh jobqd (fresh temp data dir, --sync full, --active-limit 0, port 0), runs
# build-bench/bench_w, stops jobqd (SIGTERM, wait) and appends the JSON line to
# bench/results/jobq.jsonl. A single-run W2 sweep (protocol / batch size) follows. Then it
# prints a markdown table of the medians beside the peers' figures (bench/peers.json).
#
#   make bench              3 repetitions, full sizes (100,000 jobs; W3 20 s)
#   QUICK=1 make bench      1 repetition, 10,000 jobs, W3 5 s, a short sweep
#   SEED=1 make bench       also bench_latency (seed latency table; 1M jobs, long)
#   SEARCH=1 make bench     also bench_search (search latencies on 1M jobs / 5M log lines, or
#                           100k / 500k with QUICK=1; fills its own database under /tmp)
#   PG=1 make bench         the same workloads on PostgreSQL: a private cluster (initdb in a temp
#                           dir, fsync=on, synchronous_commit=on), a fresh database per run;
#                           results in bench/results/jobq-pg.jsonl
#   PG=1 NODES=2 make bench two jobqd processes (own ports) on the same database per run;
#                           bench_w spreads producer calls over them round-robin and
#                           alternates its workers between them (PG=1 only)
#   GET=1 make bench        also status reads (bench_w --workload get: GET /v1/jobs/{id} of
#                           1,000 jobs, 32 in flight) without and with the shared cache
#                           (--cache on a private redis-server on a temp port), 1 run each
#                           (the workloads "get" and "get-redis" in WORKLOADS do the same)
# Knobs: REPS, TIMEOUT (300 s per run), WORKLOADS ("w1a w1b w2 w3"), SWEEP=0 to skip the
#        sweep, BENCH_ARGS (extra bench_w args), JOBS (cmake -j), BUILD (build tree,
#        default build-bench).
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
QUICK=${QUICK:-0}
SEED=${SEED:-0}
SEARCH=${SEARCH:-0}
if [ "$QUICK" = 1 ]; then REPS=${REPS:-1}; QARG=--quick; else REPS=${REPS:-3}; QARG=; fi
TIMEOUT=${TIMEOUT:-300}
WORKLOADS=${WORKLOADS:-"w1a w1b w2 w3"}
SWEEP=${SWEEP:-1}
BENCH_ARGS=${BENCH_ARGS:-}
BUILD=${BUILD:-build-bench}
RESULTS=bench/results/jobq.jsonl
RUN_ID=$(date -u +%Y%m%dT%H%M%SZ)-$$
DURABILITY="--sync full: SQLite WAL, the WAL fsync'd (pipelined, one per group commit) before every reply"
ADMIN="bench-admin-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
SERVER_PID=; SERVER_PIDS=(); PORTS=(); DATA=
PG=${PG:-0}
NODES=${NODES:-1}
GET=${GET:-0}
RDIR=; RPORT=
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PGDIR=; PGPORT=; PGN=0
if [ "$PG" = 1 ]; then
    RESULTS=bench/results/jobq-pg.jsonl
    DURABILITY="PostgreSQL 15, private cluster on /tmp: fsync=on, synchronous_commit=on (WAL flushed before the reply)"
    [ "$NODES" -gt 1 ] && DURABILITY="$DURABILITY; $NODES jobqd nodes on one database"
elif [ "$NODES" != 1 ]; then
    echo "bench: NODES needs PG=1 (nodes share a PostgreSQL database)" >&2; exit 2
fi

# As the postgres user when root (initdb refuses root).
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_up() {
    PGDIR=$(mktemp -d /tmp/jobq-bench-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres "$PGDIR"
    PGPORT=$(free_port)
    as_pg "$PG_BIN/initdb" -D "$PGDIR/data" -A trust -U postgres >"$PGDIR/initdb.log" 2>&1 &&
        as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/postgres.log" -w -t 60 start \
            -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_buffers=256MB -c fsync=on -c synchronous_commit=on" >/dev/null
}

pg_down() {
    [ -n "$PGDIR" ] || return 0
    as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null 2>&1
    rm -rf "$PGDIR"; PGDIR=
}

log() { echo "bench: $*" >&2; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# A private, empty redis-server (no persistence: it is a cache) for one run; sets RPORT.
redis_up() {
    RDIR=$(mktemp -d /tmp/jobq-bench-redis.XXXXXX)
    RPORT=$(free_port)
    redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
        --dir "$RDIR" --pidfile "$RDIR/redis.pid" --logfile "$RDIR/redis.log" >/dev/null &&
        for _ in $(seq 100); do
            redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && return 0
            sleep 0.05
        done
    return 1
}

redis_down() {
    [ -n "$RDIR" ] || return 0
    [ -s "$RDIR/redis.pid" ] && kill "$(cat "$RDIR/redis.pid")" 2>/dev/null
    for _ in $(seq 50); do [ -s "$RDIR/redis.pid" ] || break; sleep 0.1; done
    rm -rf "$RDIR"; RDIR=; RPORT=
}

build() {
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null &&
        cmake --build "$BUILD" -j"${JOBS:-2}" --target jobqd bench_w bench_table $1 >/dev/null
}

# Starts one jobqd on db (node n); appends its pid and port to SERVER_PIDS, PORTS.
start_node() { # n db [jobqd args…]
    local n=$1 db=$2; shift 2
    JOBQ_ADMIN_TOKEN=$ADMIN "$BUILD/jobqd" --db "$db" --host 127.0.0.1 --port 0 \
        --port-file "$DATA/port$n" --sync full --active-limit 0 --log-level warn "$@" \
        </dev/null >"$DATA/jobqd$n.log" 2>&1 &
    local pid=$!
    SERVER_PIDS+=("$pid")
    for _ in $(seq 200); do
        [ -s "$DATA/port$n" ] &&
            curl -fs "http://127.0.0.1:$(cat "$DATA/port$n")/healthz" >/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    PORTS+=("$(cat "$DATA/port$n" 2>/dev/null || echo 0)")
    [ "${PORTS[-1]}" != 0 ] && kill -0 "$pid" 2>/dev/null
}

# Starts a fresh jobqd (NODES of them on one PostgreSQL database); sets SERVER_PID, PORT
# (the first node's), SERVER_PIDS, PORTS, DATA. Extra args go to jobqd.
start_server() {
    DATA=$(mktemp -d /tmp/jobq-bench.XXXXXX)
    SERVER_PIDS=(); PORTS=()
    local db="$DATA/jobq.db" ok=0
    if [ "$PG" = 1 ]; then
        PGN=$((PGN + 1))
        as_pg "$PG_BIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "CREATE DATABASE bench$PGN" postgres >/dev/null || return 1
        db="postgres://postgres@127.0.0.1:$PGPORT/bench$PGN"
    fi
    for n in $(seq 1 "$NODES"); do start_node "$n" "$db" "$@" || ok=1; done
    SERVER_PID=${SERVER_PIDS[0]}; PORT=${PORTS[0]}
    return $ok
}

stop_server() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${SERVER_PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    [ -n "$DATA" ] && rm -rf "$DATA"
    SERVER_PID=; SERVER_PIDS=(); PORTS=(); DATA=
}
trap 'stop_server; redis_down; pg_down; exit 130' INT TERM

# A result line for a run that produced none.
bad_line() { # workload rep status rc [sweep-label]
    local extra=""
    [ -n "${5:-}" ] && extra=",\"sweep\":true,\"sweep_label\":\"$5\""
    printf '{"system":"jobq","workload":"%s","status":"%s","rc":%s,"run_id":"%s","rep":%s,"quick":%s%s}\n' \
        "$1" "$3" "$4" "$RUN_ID" "$2" "$([ "$QUICK" = 1 ] && echo true || echo false)" "$extra"
}

# One run on a fresh jobqd: workload rep [sweep-label] [bench_w args…]. "get" and
# "get-redis" are the status-GET runs (the latter with the shared cache on).
run_one() {
    local wl=$1 rep=$2 label=$3; shift 3
    local W; W=$(echo "$wl" | tr a-z A-Z | sed 's/^W/W/;s/A$/a/;s/B$/b/')
    local out rc line jobqd_args=()
    if [ "$wl" = get-redis ]; then
        redis_up || { log "$W: redis-server did not start"; redis_down; return; }
        jobqd_args=(--cache "redis://127.0.0.1:$RPORT")
        set -- "$@" --cache-label "redis (private redis-server)"; wl=get
    elif [ "$wl" = get ]; then
        set -- "$@" --cache-label none
    fi
    if ! start_server "${jobqd_args[@]}"; then
        log "$W rep $rep: jobqd did not start"; cat "$DATA"/jobqd*.log >&2
        bad_line "$W" "$rep" failed 1 "$label" >>"$RESULTS"; stop_server; return
    fi
    out=$(mktemp)
    local nodes=() i
    for i in "${!PORTS[@]}"; do
        nodes+=(--url "http://127.0.0.1:${PORTS[$i]}" --server-pid "${SERVER_PIDS[$i]}")
    done
    timeout "$TIMEOUT" "$BUILD/bench_w" "${nodes[@]}" --admin-token "$ADMIN" \
        --workload "$wl" $QARG --durability "$DURABILITY" \
        --run-id "$RUN_ID" --rep "$rep" ${label:+--sweep-label "$label"} $BENCH_ARGS "$@" >"$out"
    rc=$?
    line=$(tail -n 1 "$out")
    if [ $rc -eq 124 ]; then
        log "$W rep $rep${label:+ ($label)}: timed out after ${TIMEOUT}s"
        bad_line "$W" "$rep" timed_out $rc "$label" >>"$RESULTS"
    elif [ $rc -ne 0 ] || [ "${line:0:1}" != "{" ]; then
        log "$W rep $rep${label:+ ($label)}: failed (rc $rc)"
        bad_line "$W" "$rep" failed $rc "$label" >>"$RESULTS"
    else
        echo "$line" >>"$RESULTS"
        log "$W rep $rep${label:+ ($label)}: $(echo "$line" | sed -E 's/.*"jobs_per_s":([0-9.]+).*"p50_ms":([0-9.]+),"p99_ms":([0-9.]+).*/\1 jobs\/s, p50 \2 ms, p99 \3 ms/')"
    fi
    rm -f "$out"
    stop_server
    redis_down
}

# The seed latency table (bench_latency, by another engineer) on its own jobqd.
run_seed() {
    start_server --retention-ms 1 --cleanup-interval-ms 86400000 || { log "seed: jobqd did not start"; stop_server; return; }
    log "seed: bench_latency ${QARG:+(quick)}"
    "$BUILD/bench_latency" --url "http://127.0.0.1:$PORT" --admin-token "$ADMIN" $QARG \
        | tee "bench/results/seed_latency-$RUN_ID.txt"
    stop_server
}

machine_line() {
    local fs sync
    fs=$(df -T /tmp 2>/dev/null | awk 'NR==2{print $2}')
    sync=$(dd if=/dev/zero of=/tmp/jobq-bench-dsync.$$ bs=4k count=500 oflag=dsync 2>&1 |
           awk '/copied/{for(i=1;i<=NF;i++) if($i ~ /^s,?$/) s=$(i-1); print s}' | tr -d ',')
    rm -f /tmp/jobq-bench-dsync.$$
    local rate=""
    [ -n "$sync" ] && rate=$(awk -v s="$sync" 'BEGIN{ if (s>0) printf "%.0f", 500/s }')
    echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(free -g | awk '/Mem:/{print $2}') GiB," \
         "$(uname -sr); data dir on /tmp ($fs); 4 KiB write+O_DSYNC: ${rate:-?} writes/s (dd)." \
         "Server, client and workers share the cores; jobq runs --sync full (fsync per group commit);" \
         "load average now: $(cut -d' ' -f1-3 /proc/loadavg) (others' CPU s in the details = busy CPU of other processes in the window)."
}

main() {
    mkdir -p bench/results
    log "building Release in $BUILD/"
    build "$([ "$SEED" = 1 ] && echo bench_latency) $([ "$SEARCH" = 1 ] && echo bench_search)" || { log "build failed"; exit 1; }
    if [ "$PG" = 1 ]; then pg_up || { log "PostgreSQL cluster did not start"; pg_down; exit 1; }; fi
    log "run $RUN_ID: workloads [$WORKLOADS], $REPS rep(s)${QARG:+, quick}, timeout ${TIMEOUT}s"
    [ "$GET" = 1 ] && WORKLOADS="$WORKLOADS get get-redis"
    for wl in $WORKLOADS; do
        reps=$REPS
        case $wl in get*) reps=1 ;; esac      # a side measurement: one run each
        for rep in $(seq 1 "$reps"); do run_one "$wl" "$rep" ""; done
    done
    if [ "$SWEEP" = 1 ] && [[ " $WORKLOADS " == *" w2 "* ]]; then
        local sweep="next:1 next:10 next:25 next:100 claim:100"
        [ "$QUICK" = 1 ] && sweep="next:10 claim:100"
        for p in $sweep; do
            run_one w2 0 "${p%%:*} batch ${p##*:}" --protocol "${p%%:*}" --claim-max "${p##*:}"
        done
    fi
    [ "$SEED" = 1 ] && run_seed
    # search latencies (bench_search starts and stops its own jobqd on its own database)
    [ "$SEARCH" = 1 ] && "$BUILD/bench_search" $QARG | tee "bench/results/search-$RUN_ID.txt"
    echo
    echo "## jobq vs peers — run $RUN_ID (${REPS} rep(s), medians${QARG:+; QUICK: 10,000 jobs, W3 5 s}$([ "$NODES" -gt 1 ] && echo "; $NODES jobqd nodes on one PostgreSQL database"))"
    echo
    "$BUILD/bench_table" --results "$RESULTS" --peers bench/peers.json --run-id "$RUN_ID"
    echo
    machine_line
    pg_down
    echo "Raw lines: $RESULTS (run_id $RUN_ID); tree $(git describe --always --dirty 2>/dev/null)."
}
main
