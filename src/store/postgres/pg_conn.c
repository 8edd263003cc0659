/*
 * pg_conn.c - the connection pool, the transaction runner and row helpers
 * of the PostgreSQL backend.
 *
 * Every operation is one transaction on a pooled connection: BEGIN, SET
 * LOCAL ROLE (jobq_app with SET LOCAL jobq.user_id for user-scoped work,
 * jobq_service otherwise), the op's statements, then COMMIT preceded by one
 * pg_notify when the transaction made jobs claimable or wrote events (the
 * NOTIFY is delivered at commit, so other nodes wake only for durable
 * changes). synchronous_commit stays on: a reply is sent after the commit
 * is flushed.
 *
 * Lost connections (PostgreSQL restarted, backend killed): the connection is
 * reset and the op runs once more when that is safe - a read, a write that
 * failed before COMMIT was sent (the server rolled it back), or a write whose
 * retry is idempotent (a create carries its job id, made here before the
 * first attempt, and looks for it first; a request with an Idempotency-Key
 * replays its stored reply). A write whose COMMIT outcome is unknown and is
 * not retry-safe fails with JQ_E_UNAVAILABLE (503), never runs twice.
 * Deadlocks and serialization failures are rolled back by the server and
 * retried.
 */
#include "store/postgres/pg_int.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"

enum { TX_ATTEMPTS = 3, RECONNECT_PAUSE_MS = 200 };

/* --- parameters --- */

void pp_s(struct pp *p, const char *s)
{
    if (p->n < PP_MAX)
        p->v[p->n++] = s;
}

void pp_i(struct pp *p, int64_t v)
{
    if (p->n < PP_MAX) {
        snprintf(p->num[p->n], PP_NUM, "%lld", (long long)v);
        p->v[p->n] = p->num[p->n];
        p->n++;
    }
}

/* --- pool --- */

static PGconn *connect_one(const char *conninfo)
{
    PGconn *pc = PQconnectdb(conninfo);
    if (PQstatus(pc) != CONNECTION_OK) {
        log_warn("postgres: cannot connect: %s", PQerrorMessage(pc));
        PQfinish(pc);
        return NULL;
    }
    /* jit off: the planner JIT-compiles any plan whose estimate passes jit_above_cost
     * (trigger statements over transition tables do), which costs milliseconds of
     * LLVM per statement on short OLTP statements that run in microseconds;
     * application_name: what pg_stat_activity shows an operator */
    PGresult *r = PQexec(pc, "SET synchronous_commit = on; SET client_min_messages = warning;"
                             " SET lock_timeout = '30s'; SET jit = off;"
                             " SET application_name = 'jobqd'");
    PQclear(r);
    return pc;
}

jq_err pg__pool_open(struct pg *s)
{
    s->conns = calloc((size_t)s->cfg.pool, sizeof *s->conns);
    if (!s->conns)
        return JQ_E_NOMEM;
    for (int i = 0; i < s->cfg.pool; i++) {
        s->conns[i].store = s;
        if (!(s->conns[i].pc = connect_one(s->conninfo)))
            return JQ_E_STORAGE;
        s->conns[i].next_free = s->free;
        s->free = &s->conns[i];
    }
    return JQ_E_OK;
}

/* Forgets the statements prepared on cn (its session is gone or going). */
static void stmts_clear(struct pgconn *cn)
{
    for (int i = 0; i < cn->n_stmts; i++)
        free(cn->stmts[i].sql);
    cn->n_stmts = 0;
}

void pg__pool_close(struct pg *s)
{
    for (int i = 0; s->conns && i < s->cfg.pool; i++) {
        stmts_clear(&s->conns[i]);
        if (s->conns[i].pc)
            PQfinish(s->conns[i].pc);
    }
    free(s->conns);
    s->conns = NULL;
}

static struct pgconn *acquire(struct pg *s)
{
    pthread_mutex_lock(&s->mu);
    while (!s->free)
        pthread_cond_wait(&s->cond, &s->mu);
    struct pgconn *cn = s->free;
    s->free = cn->next_free;
    pthread_mutex_unlock(&s->mu);
    return cn;
}

static void release(struct pg *s, struct pgconn *cn)
{
    pthread_mutex_lock(&s->mu);
    cn->next_free = s->free;
    s->free = cn;
    pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->mu);
}

/* A usable connection: resets one that broke (PostgreSQL restarted, backend killed). */
static bool ensure(struct pg *s, struct pgconn *cn)
{
    if (cn->pc && PQstatus(cn->pc) == CONNECTION_OK && !cn->lost)
        return true;
    if (cn->pc)
        PQfinish(cn->pc);
    stmts_clear(cn);                  /* prepared statements died with the session */
    cn->pc = connect_one(s->conninfo);
    cn->lost = !cn->pc;
    if (cn->pc) {
        atomic_fetch_add(&s->reconnects, 1);
        log_info("postgres: reconnected");
    }
    return cn->pc != NULL;
}

/* --- statements --- */

/* Classifies a failed result: lost connection, retryable conflict, or plain error. */
static jq_err classify(struct pgconn *cn, const PGresult *r, const char *sql)
{
    const char *st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    snprintf(cn->state, sizeof cn->state, "%s", st ? st : "");
    cn->lost = PQstatus(cn->pc) != CONNECTION_OK || !st || strncmp(st, "08", 2) == 0 ||
               strncmp(st, "57P", 3) == 0;
    cn->retry = st && (strcmp(st, "40P01") == 0 || strcmp(st, "40001") == 0);
    if (!cn->retry)
        log_error("postgres: %s [%s]: %.200s", r ? PQresultErrorMessage(r)
                  : PQerrorMessage(cn->pc), st ? st : "-", sql);
    if (cn->lost)
        return JQ_E_UNAVAILABLE;
    if (st && strcmp(st, "53100") == 0)      /* disk full */
        return JQ_E_UNAVAILABLE;
    return JQ_E_STORAGE;
}

/* --- prepared statements --- */

static uint64_t fnv1a(const char *sql)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

/* Index of sql among cn's prepared statements, -1 if it is not one. Statements
 * are parsed and planned once per connection instead of per call: the planner
 * weighs every index of jobs for each statement, and that cost more than running
 * it (pg_stat_statements: 0.29 ms planning vs 0.01 ms executing the create's
 * result-cache lookup). Past PG_STMT_CACHE distinct texts, statements run
 * unprepared. */
static int stmt_find(const struct pgconn *cn, const char *sql, uint64_t h)
{
    for (int i = 0; i < cn->n_stmts; i++)
        if (cn->stmts[i].hash == h && strcmp(cn->stmts[i].sql, sql) == 0)
            return i;
    return -1;
}

static void stmt_name(int i, char name[16])
{
    snprintf(name, 16, "jq%d", i);
}

/* Records a statement just prepared as slot cn->n_stmts. */
static void stmt_add(struct pgconn *cn, const char *sql, uint64_t h)
{
    char *copy = strdup(sql);
    if (copy)
        cn->stmts[cn->n_stmts++] = (struct pg_stmt){h, copy};
}

/* The transaction's BEGIN, role and user, the statement (and its PREPARE when it
 * is new) as one pipeline: one round trip where there were two. Returns the
 * statement's result, or the first failure's; *ran: the statement itself was
 * reached (not when the connection was found dead at BEGIN). */
static PGresult *piped(struct pgconn *cn, int slot, bool prepare, const char *sql, int n,
                       const char *const *v, bool *ran)
{
    PGconn *pc = cn->pc;
    const char *user = cn->begin_user;
    char name[16];
    stmt_name(slot, name);
    cn->begin_pending = false;
    bool ok = PQenterPipelineMode(pc) &&
        PQsendQueryParams(pc, cn->begin_ro ? "BEGIN READ ONLY" : "BEGIN", 0, NULL, NULL, NULL,
                          NULL, 0) &&
        PQsendQueryParams(pc, user ? "SET LOCAL ROLE jobq_app" : "SET LOCAL ROLE jobq_service",
                          0, NULL, NULL, NULL, NULL, 0) &&
        (!user || PQsendQueryParams(pc, "SELECT set_config('jobq.user_id', $1, true)", 1, NULL,
                                    &user, NULL, NULL, 0)) &&
        (!cn->begin_generic || PQsendQueryParams(pc, "SET LOCAL plan_cache_mode ="
                                                 " force_generic_plan", 0, NULL, NULL, NULL,
                                                 NULL, 0)) &&
        (!prepare || PQsendPrepare(pc, name, sql, n, NULL)) &&
        (slot >= 0 ? PQsendQueryPrepared(pc, name, n, v, NULL, NULL, 0)
                   : PQsendQueryParams(pc, sql, n, NULL, v, NULL, NULL, 0)) &&
        PQpipelineSync(pc);
    /* BEGIN, SET ROLE, [user], [plan_cache_mode], [PREPARE], the statement */
    int cmds = 3 + (user != NULL) + cn->begin_generic + prepare;
    PGresult *last = NULL, *fail = NULL;
    for (int i = 0; ok && i < cmds; i++) {
        PGresult *r = PQgetResult(pc);
        ExecStatusType st = PQresultStatus(r);
        if (!r || (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)) {
            if (!fail && st != PGRES_PIPELINE_ABORTED) {
                fail = r;
                *ran = i + 1 + prepare >= cmds;    /* the PREPARE or the statement failed */
            } else {
                PQclear(r);
            }
            ok = r != NULL;
        } else if (i + 1 == cmds) {
            last = r;
        } else {
            if (prepare && i + 2 == cmds)
                stmt_add(cn, sql, fnv1a(sql));
            PQclear(r);
        }
        if (r)
            while ((r = PQgetResult(pc)))        /* the NULL that ends each command */
                PQclear(r);
    }
    PGresult *r = ok ? PQgetResult(pc) : NULL;    /* PGRES_PIPELINE_SYNC */
    PQclear(r);
    if (!PQexitPipelineMode(pc))
        cn->lost = true;
    if (fail || !last) {
        PQclear(last);
        return fail;
    }
    return last;
}

PGresult *pg__q(struct pgconn *cn, struct sctx *c, const char *sql, const struct pp *p,
                jq_err *err)
{
    if (c)
        c->stmts++;
    int n = p ? p->n : 0;
    const char *const *v = p ? p->v : NULL;
    uint64_t h = fnv1a(sql);
    int slot = stmt_find(cn, sql, h);
    bool prepare = slot < 0 && cn->n_stmts < PG_STMT_CACHE;
    if (prepare)
        slot = cn->n_stmts;
    char name[16];
    stmt_name(slot, name);
    PGresult *r = NULL;
    if (cn->begin_pending) {
        bool ran = true;
        r = piped(cn, slot, prepare, sql, n, v, &ran);
        if (c && !ran)
            c->stmts--;               /* dead at BEGIN: the retry runs it, once */
    } else if (prepare) {
        r = PQprepare(cn->pc, name, sql, n, NULL);
        if (PQresultStatus(r) == PGRES_COMMAND_OK) {
            PQclear(r);
            stmt_add(cn, sql, h);
            r = PQexecPrepared(cn->pc, name, n, v, NULL, NULL, 0);
        }
    } else {
        r = slot >= 0 ? PQexecPrepared(cn->pc, name, n, v, NULL, NULL, 0)
                      : PQexecParams(cn->pc, sql, n, NULL, v, NULL, NULL, 0);
    }
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        *err = JQ_E_OK;
        return r;
    }
    *err = classify(cn, r, sql);
    PQclear(r);
    return NULL;
}

jq_err pg__exec(struct pgconn *cn, struct sctx *c, const char *sql, const struct pp *p,
                int *changed)
{
    jq_err err;
    PGresult *r = pg__q(cn, c, sql, p, &err);
    if (r && changed)
        *changed = atoi(PQcmdTuples(r));
    PQclear(r);
    return err;
}

static jq_err simple(struct pgconn *cn, const char *sql)
{
    PGresult *r = PQexec(cn->pc, sql);
    ExecStatusType st = PQresultStatus(r);
    jq_err err = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? JQ_E_OK
                                                                 : classify(cn, r, sql);
    PQclear(r);
    return err;
}

/* --- transactions --- */

/* BEGIN and the role (+ user) of the transaction: sent with its first
 * statement (pg__q, piped), so a transaction costs a round trip less. */
static void begin(struct pgconn *cn, enum pg_mode mode, const char *user, bool generic)
{
    cn->begin_pending = true;
    cn->begin_ro = mode == PG_READ;
    cn->begin_user = user;
    cn->begin_generic = generic;
}

enum phase { PH_BEFORE_COMMIT, PH_COMMIT_SENT, PH_DONE };

/* COMMIT, preceded by the one NOTIFY of the transaction when it wrote. The
 * payload says "claimable" when the op made jobs claimable or a trigger
 * unblocked dependents (jobq.wake, see the schema); the SELECT also returns
 * that flag, so this node wakes its own waiters. One round trip. */
static jq_err commit(struct pg *s, struct pgconn *cn, enum pg_mode mode, enum phase *ph)
{
    if (cn->begin_pending) {          /* no statement ran: nothing was begun */
        cn->begin_pending = false;
        *ph = PH_DONE;
        return JQ_E_OK;
    }
    if (!(mode == PG_WRITE && (cn->wake || cn->wrote))) {
        *ph = PH_COMMIT_SENT;
        jq_err err = simple(cn, "COMMIT");
        if (!err)
            *ph = PH_DONE;
        return err;
    }
    char sql[320];
    snprintf(sql, sizeof sql, "SELECT pg_notify('jobq', '%s:' || x.w), x.w FROM (SELECT CASE"
             " WHEN %s OR current_setting('jobq.wake', true) = '1' THEN '1' ELSE '0' END w) x;"
             " COMMIT", s->node, cn->wake ? "true" : "false");
    *ph = PH_COMMIT_SENT;
    int64_t t0 = clock_mono_us();
    jq_err err = JQ_E_OK;
    if (!PQsendQuery(cn->pc, sql)) {
        err = classify(cn, NULL, sql);
    } else {
        PGresult *r;
        while ((r = PQgetResult(cn->pc))) {
            ExecStatusType st = PQresultStatus(r);
            if (st == PGRES_TUPLES_OK && PQntuples(r) == 1)
                cn->wake = cn->wake || PQgetvalue(r, 0, 1)[0] == '1';
            else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && !err)
                err = classify(cn, r, sql);
            PQclear(r);
        }
    }
    atomic_fetch_add(&s->fsync_us, (uint64_t)(clock_mono_us() - t0));
    if (!err)
        *ph = PH_DONE;
    else if (!cn->lost && PQtransactionStatus(cn->pc) != PQTRANS_IDLE)
        simple(cn, "ROLLBACK");          /* the SELECT failed: COMMIT never ran */
    return err;
}

static jq_err idem_lock(struct pgconn *cn, const struct idem *id)
{
    struct pp p = {0};
    pp_s(&p, id->user_id);
    pp_s(&p, id->key);
    return pg__exec(cn, NULL, "SELECT pg_advisory_xact_lock(1785684595,"
                    " hashtext($1 || chr(31) || $2))", &p, NULL);
}

static jq_err run_once(struct pg *s, struct pgconn *cn, struct sctx *c, enum pg_mode mode,
                       bool generic, const char *user, pg_fn fn, void *arg, enum phase *ph)
{
    *ph = PH_BEFORE_COMMIT;
    cn->wake = cn->wrote = cn->retry = false;
    begin(cn, mode, user, generic);
    jq_err err = JQ_E_OK;
    struct idem *id = mode == PG_WRITE && c ? c->idem : NULL;
    if (!err && id)               /* concurrent requests with one key: one runs, others replay */
        err = idem_lock(cn, id);
    if (!err && id)
        err = pg__idem_check(cn, c);
    if (!err && !(id && id->replayed)) {
        err = fn(cn, c, arg);
        if (!err && id)
            err = pg__idem_store(cn, c);
    }
    if (err) {
        if (!cn->lost && !cn->begin_pending)
            simple(cn, "ROLLBACK");
        cn->begin_pending = false;
        cn->wake = cn->wrote = false;
        return err;
    }
    return commit(s, cn, mode, ph);
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

jq_err pg__tx(struct pg *s, struct sctx *c, enum pg_mode mode, const char *user,
              bool retry_safe, pg_fn fn, void *arg)
{
    bool generic = mode == PG_WORK;
    if (generic)
        mode = PG_WRITE;
    struct pgconn *cn = acquire(s);
    jq_err err = JQ_E_UNAVAILABLE;
    enum phase ph = PH_BEFORE_COMMIT;
    for (int attempt = 0; attempt < TX_ATTEMPTS; attempt++) {
        if (!ensure(s, cn)) {
            err = JQ_E_UNAVAILABLE;
            if (attempt + 1 < TX_ATTEMPTS)
                pause_ms(RECONNECT_PAUSE_MS);
            continue;
        }
        struct idem *id = c ? c->idem : NULL;
        if (id && !id->replayed && id->body) {      /* a rendered reply of a failed attempt */
            free(id->body);
            id->body = NULL;
        }
        err = run_once(s, cn, c, mode, generic, user, fn, arg, &ph);
        if (!err || (!cn->lost && !cn->retry))
            break;
        bool safe = cn->retry || mode == PG_READ || ph == PH_BEFORE_COMMIT || retry_safe ||
                    (c && c->idem);
        if (!safe) {
            log_warn("postgres: connection lost during COMMIT; outcome unknown, not retried");
            break;
        }
    }
    bool wake = !err && cn->wake, wrote = !err && cn->wrote;
    release(s, cn);
    if (mode == PG_WRITE) {
        atomic_fetch_add(&s->ops, 1);
        if (!err)
            atomic_fetch_add(&s->commits, 1);
    }
    if (wake || wrote)
        pg__notify_local(s, wake);
    return err;
}

/* --- rows --- */

void pg__text(const PGresult *r, int row, int col, char *dst, size_t cap)
{
    snprintf(dst, cap, "%s", PQgetisnull(r, row, col) ? "" : PQgetvalue(r, row, col));
}

char *pg__dup(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

int64_t pg__int(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

bool pg__null(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col);
}

/* A jsonb column's text as jansson prints it compact. jsonb::text spaces its output
 * ({"a": 1}) and escapes control characters in lower case; the API copies stored
 * JSON texts into list and claim replies as they are (server/api/jobtext.c), which
 * must be byte for byte what GET prints after parsing them. NULL for SQL NULL. */
static char *json_col(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    const char *text = PQgetvalue(r, row, col);
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    char *out = v ? json_dump_compact(v) : NULL;
    json_decref(v);
    return out ? out : strdup(text);
}

void pg__load_job(const PGresult *r, int row, struct job *j)
{
    memset(j, 0, sizeof *j);
    pg__text(r, row, 0, j->id, sizeof j->id);
    pg__text(r, row, 1, j->user_id, sizeof j->user_id);
    pg__text(r, row, 2, j->queue, sizeof j->queue);
    pg__text(r, row, 3, j->type, sizeof j->type);
    pg__text(r, row, 4, j->worker_id, sizeof j->worker_id);
    pg__text(r, row, 5, j->error_code, sizeof j->error_code);
    pg__text(r, row, 6, j->lease_token, sizeof j->lease_token);
    if (!job_status_parse(PQgetvalue(r, row, 7), &j->status))
        j->status = JOB_FAILED;
    j->priority = (int)pg__int(r, row, 8);
    j->attempts = (int)pg__int(r, row, 9);
    j->max_attempts = (int)pg__int(r, row, 10);
    j->progress_percent = pg__null(r, row, 11) ? -1 : (int)pg__int(r, row, 11);
    int64_t *times[] = {&j->run_at, &j->created_at, &j->updated_at, &j->started_at,
                        &j->completed_at, &j->expires_at, &j->lease_expires_at};
    for (int i = 0; i < 7; i++)
        *times[i] = pg__int(r, row, 12 + i);
    j->params = json_col(r, row, 19);
    j->result = json_col(r, row, 20);
    j->error_message = pg__dup(r, row, 21);
    j->progress_message = pg__dup(r, row, 22);
    j->blocked = (int)pg__int(r, row, 23);
    pg__text(r, row, 24, j->workflow_id, sizeof j->workflow_id);
    pg__text(r, row, 25, j->step_key, sizeof j->step_key);
    if (PQnfields(r) > PG_NCOLS && strcmp(PQfname(r, PG_NCOLS), "parents") == 0)
        j->parents = pg__dup(r, row, PG_NCOLS);
}

void pg__new_id(struct pg *s, int64_t now, char id[ID_LEN + 1])
{
    uint8_t rnd[ID_RAND_BYTES];
    randombytes_buf(rnd, sizeof rnd);
    pthread_mutex_lock(&s->idmu);
    id_next(&s->ids, now, rnd, id);
    pthread_mutex_unlock(&s->idmu);
}
