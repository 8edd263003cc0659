/*
 * pg_notify.c - many nodes on one database: one dedicated session LISTENs on
 * channel "jobq" and holds the maintenance leader lock.
 *
 * Every write transaction that made jobs claimable or wrote events sends one
 * pg_notify('jobq', '<node>:<claimable>') before COMMIT (pg_conn.c); the
 * node that committed wakes its own waiters directly, and the listener
 * thread of every other node calls the store's notify callback, so
 * long-poll claims, SSE and wait wake on all nodes. While the listening
 * session is down the thread calls the callback every second instead
 * (polling fallback) and keeps trying to reconnect.
 *
 * Leader: the session tries pg_try_advisory_lock(LEADER_KEY) every second
 * (every 50 ms for its first 3 s; not on every notification) until it holds
 * it; the lock lives as long as the session, so when a leader dies (kill -9,
 * lost network) PostgreSQL ends its session, frees the lock, and another node
 * takes over within a second.
 *
 * Clock: the same session measures the database's clock against this host's every tick
 * and keeps the difference in the server's clock (store_cfg.clock_skew), so every node
 * decides run_at, leases and expiry on the database's clock: a node whose clock runs
 * ahead neither claims early nor rescues live leases (RELIABILITY.md T8).
 */
#include "store/postgres/pg_int.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

/* TICK_MS: housekeeping, and a non-leader's attempt at the lock. FAST_MS for the
 * first FAST_FOR_MS of a session: a node restarted in place finds the lock still
 * held by its predecessor's backend for a few milliseconds after that one exited,
 * and would otherwise lead a second late. */
enum { TICK_MS = 1000, FAST_MS = 50, FAST_FOR_MS = 3000 };
/* SKEW_RTT_MAX_MS: a measurement whose round trip took longer is not used (half the round
 * trip is its error); SKEW_STEP_MS: smaller changes are that noise, not the clock. */
enum { SKEW_RTT_MAX_MS = 50, SKEW_STEP_MS = 5 };
#define LEADER_KEY "1785684594"

void pg__notify_local(struct pg *s, bool claimable)
{
    if (claimable)                    /* before the waiters wake: has_due reads it */
        atomic_fetch_add(&s->wake_gen, 1);
    pthread_mutex_lock(&s->nmu);
    store_notify_fn fn = s->notify;
    void *arg = s->notify_arg;
    pthread_mutex_unlock(&s->nmu);
    if (fn)
        fn(arg, claimable);
}

/* Keeps *cfg.clock_skew at the database's clock minus this host's wall clock. */
static void measure_skew(struct pg *s, PGconn *pc)
{
    if (!s->cfg.clock_skew)
        return;
    int64_t t0 = clock_now_ms(NULL);
    PGresult *r = PQexec(pc, "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::int8");
    int64_t t1 = clock_now_ms(NULL);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
        t1 - t0 <= SKEW_RTT_MAX_MS) {
        int64_t skew = atoll(PQgetvalue(r, 0, 0)) - (t0 + t1) / 2;
        int64_t old = atomic_load(s->cfg.clock_skew);
        if (llabs(skew - old) >= SKEW_STEP_MS) {
            atomic_store(s->cfg.clock_skew, skew);
            if (llabs(skew - old) >= 1000)
                log_warn("postgres: the database's clock is %lld ms %s this host's; jobqd "
                         "uses the database's", (long long)llabs(skew),
                         skew > 0 ? "ahead of" : "behind");
        }
    }
    PQclear(r);
}

static PGconn *session_open(struct pg *s)
{
    PGconn *pc = PQconnectdb(s->conninfo);
    if (PQstatus(pc) == CONNECTION_OK) {
        PGresult *r = PQexec(pc, "SET jit = off; SET application_name = 'jobqd listener';"
                                 " LISTEN jobq");     /* jit, application_name: see pg_conn.c */
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (ok) {
            log_info("postgres: listening for other nodes' changes");
            measure_skew(s, pc);
            return pc;
        }
    }
    PQfinish(pc);
    return NULL;
}

/* Tries to become the leader (once per tick while not). */
static void try_lead(struct pg *s, PGconn *pc)
{
    PGresult *r = PQexec(pc, "SELECT pg_try_advisory_lock(" LEADER_KEY ")");
    bool got = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (got) {
        atomic_store(&s->leader, true);
        log_info("postgres: this node is the maintenance leader");
    }
}

/* Delivers the notifications received; false if the session broke. */
static bool drain(struct pg *s, PGconn *pc)
{
    if (!PQconsumeInput(pc))
        return false;
    PGnotify *n;
    bool any = false, claimable = false;
    size_t nl = strlen(s->node);
    while ((n = PQnotifies(pc))) {
        const char *p = n->extra;
        if (!(strncmp(p, s->node, nl) == 0 && p[nl] == ':')) {   /* not our own */
            any = true;
            const char *colon = strrchr(p, ':');
            claimable = claimable || (colon && colon[1] == '1');
        }
        PQfreemem(n);
    }
    if (any)
        pg__notify_local(s, claimable);
    return PQstatus(pc) == CONNECTION_OK;
}

/* Leader housekeeping, once per tick: ids for the committed events (readers
 * do it too, so SSE does not wait for this), and the counter and statistics
 * deltas folded into their base rows. Each its own short transaction. */
static void housekeep(PGconn *pc)
{
    PGresult *r = PQexec(pc, "BEGIN; SET LOCAL ROLE jobq_service; SELECT jq_seq_events(); COMMIT;"
                             " BEGIN; SET LOCAL ROLE jobq_service; SELECT jq_compact(); COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        log_warn("postgres: housekeeping: %s", PQresultErrorMessage(r));
    PQclear(r);
    if (PQtransactionStatus(pc) != PQTRANS_IDLE)
        PQclear(PQexec(pc, "ROLLBACK"));
}

static void lost(struct pg *s, PGconn **pc)
{
    if (atomic_exchange(&s->leader, false))
        log_warn("postgres: lost the leader session");
    atomic_store(&s->listening, false);
    PQfinish(*pc);
    *pc = NULL;
}

static void *listener_main(void *arg)
{
    struct pg *s = arg;
    PGconn *pc = NULL;
    int64_t last_hk = 0, last_try = 0, last_skew = 0, opened = 0;
    while (!atomic_load(&s->stop)) {
        if (!pc && (pc = session_open(s))) {
            atomic_store(&s->listening, true);
            opened = clock_mono_us();
        }
        int64_t now = clock_mono_us();
        bool fast = now - opened < FAST_FOR_MS * 1000LL;
        if (pc && !atomic_load(&s->leader) &&
            now - last_try >= (fast ? FAST_MS : TICK_MS) * 1000LL) {
            last_try = now;
            try_lead(s, pc);
        }
        if (pc && atomic_load(&s->leader) && now - last_hk >= TICK_MS * 1000LL) {
            last_hk = now;
            housekeep(pc);
        }
        if (pc && now - last_skew >= TICK_MS * 1000LL) {
            last_skew = now;
            measure_skew(s, pc);
        }
        if (pc && !drain(s, pc))      /* PQexec may have read notifications off the socket */
            lost(s, &pc);
        struct pollfd fds[2] = {{s->stop_pipe[0], POLLIN, 0}, {pc ? PQsocket(pc) : -1, POLLIN, 0}};
        int rc = poll(fds, pc ? 2 : 1, fast && !atomic_load(&s->leader) ? FAST_MS : TICK_MS);
        if (atomic_load(&s->stop))
            break;
        if (!pc) {
            pg__notify_local(s, true);      /* polling fallback while not listening */
            continue;
        }
        if ((rc > 0 && fds[1].revents) || PQstatus(pc) != CONNECTION_OK)
            if (!drain(s, pc))
                lost(s, &pc);
    }
    if (pc)
        PQfinish(pc);
    return NULL;
}

jq_err pg__listener_start(struct pg *s)
{
    if (pipe(s->stop_pipe) != 0)
        return JQ_E_STORAGE;
    if (pthread_create(&s->listener, NULL, listener_main, s) != 0)
        return JQ_E_NOMEM;
    s->listener_started = true;
    return JQ_E_OK;
}

void pg__listener_stop(struct pg *s)
{
    if (!s->listener_started)
        return;
    atomic_store(&s->stop, true);
    if (write(s->stop_pipe[1], "x", 1) < 0)
        log_warn("postgres: cannot wake the listener");
    pthread_join(s->listener, NULL);
    close(s->stop_pipe[0]);
    close(s->stop_pipe[1]);
    s->listener_started = false;
}
