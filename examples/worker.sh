#!/bin/sh
# worker.sh - a jobq worker in POSIX shell on top of the `jobq` CLI (no HTTP, no JSON parsing):
#
#   JOBQ_URL=http://127.0.0.1:8080 JOBQ_TOKEN=<worker token> ./worker.sh default
#
# `jobq claim` prints "ID LEASE_TOKEN TYPE PARAMS" per claimed job (nothing when none was due
# within --wait-ms); each job runs `handle TYPE PARAMS`, whose stdout becomes the result (as a
# JSON string) and whose non-zero exit fails the attempt. Exit codes of jobq: 1 server error,
# 3 cannot connect (back off), 2 usage.
queue=${1:-default}
worker="worker.sh:$(hostname):$$"
lease_ms=60000

# The work. Replace with real handlers.
handle() {
    case $1 in
        echo) printf '%s' "$2" ;;
        date) date -u +%Y-%m-%dT%H:%M:%SZ ;;
        *) echo "no handler for type $1" >&2; return 1 ;;
    esac
}

# Quotes $1 as a JSON string (backslash, quote and control characters are escaped).
json_string() {
    printf '%s' "$1" | awk 'BEGIN { ORS = "" ; print "\"" }
        { gsub(/\\/, "&&"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); gsub(/\r/, "\\r");
          if (NR > 1) print "\\n"; print }
        END { print "\"" }'
}

trap 'exit 0' INT TERM
while :; do
    out=$(jobq claim "$queue" --worker "$worker" --lease-ms "$lease_ms" --wait-ms 25000 2>/dev/null)
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "claim failed (exit $rc); retrying in 1 s" >&2
        sleep 1
        continue
    fi
    [ -n "$out" ] || continue
    printf '%s\n' "$out" | while read -r id lease type params; do
        jobq log "$id" "started by $worker" --lease "$lease" >/dev/null
        if result=$(handle "$type" "$params" 2>/tmp/jobq-worker.$$.err); then
            jobq complete "$id" --lease "$lease" --result "$(json_string "$result")"
        else
            jobq fail "$id" --lease "$lease" --error "$(head -c 8000 /tmp/jobq-worker.$$.err)" \
                --code handler_failed
        fi
    done
    rm -f /tmp/jobq-worker.$$.err
done
