/*
 * pgload.c - the two-node load of the PostgreSQL chaos and pressure tests (see pgload.h).
 *
 * Producers pace their creates to the offered rate (a schedule, not a wait for a
 * condition) and alternate nodes; a create with an unknown outcome (transport error, 5xx)
 * is retried with the same Idempotency-Key on the other node. Workers alternate nodes for
 * their claims (long-poll 200 ms, up to 5 jobs) and complete each job on the node that
 * answered the claim, moving to the other one while that node is down.
 */
#include "pgload.h"
#include "rel.h"

#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

enum { BUCKET_MS = 100, BUCKETS = 3600 * 1000 / BUCKET_MS, THREADS_MAX = 16 };

struct pgl {
    struct testsrv *n[PGL_NODES];
    pthread_rwlock_t lk[PGL_NODES];   /* readers: requests; writer: a restart (port moves) */
    atomic_bool down[PGL_NODES];      /* killed and not started again */
    struct ledger *lg;
    const char *user, *worker;
    struct pgl_opts o;
    atomic_bool stop_prod, stop_work;
    atomic_long created, completed, unknowns;
    atomic_int *done;                 /* completions per BUCKET_MS since t0 */
    int64_t t0;
    pthread_t prod[THREADS_MAX], work[THREADS_MAX];
    struct pgl_thr { struct pgl *l; int idx; } pt[THREADS_MAX], wt[THREADS_MAX];
    char dbarg[512];                  /* node 1's argv tail: node 0's database */
    const char *xb[5];
};

static bool transient(long st)
{
    return st == 0 || st >= 500;
}

/* Runs rq on node `want`, or on the other node while `want` is down or restarting.
 * Returns the status; *used = the node that answered. */
static long node_do(struct pgl *l, struct tsconn **c, int want, const struct ts_http *rq,
                    struct resp *r, int *used)
{
    for (int k = 0; k < PGL_NODES; k++) {
        int i = (want + k) % PGL_NODES;
        if (atomic_load(&l->down[i]) || pthread_rwlock_tryrdlock(&l->lk[i]) != 0)
            continue;
        long st = tsconn_do(c[i], rq, r);
        pthread_rwlock_unlock(&l->lk[i]);
        if (used) *used = i;
        return st;
    }
    memset(r, 0, sizeof *r);           /* both down at this instant: an unknown outcome */
    if (used) *used = want;
    return 0;
}

static void conns_open(struct pgl *l, struct tsconn **c)
{
    for (int i = 0; i < PGL_NODES; i++)
        c[i] = tsconn_new(l->n[i]);
}

static void conns_close(struct tsconn **c)
{
    for (int i = 0; i < PGL_NODES; i++)
        tsconn_free(c[i]);
}

static void backoff(unsigned *step)
{
    th_nap(step);
    if (*step > 50000) *step = 50000;
}

static void *producer(void *arg)
{
    struct pgl_thr *t = arg;
    struct pgl *l = t->l;
    struct tsconn *c[PGL_NODES];
    conns_open(l, c);
    int64_t start = th_now_ms();
    for (long k = 0; !atomic_load(&l->stop_prod); k++) {
        if (l->o.rate > 0)
            rel_pace_until(start + k * 1000 * l->o.producers / l->o.rate);
        char key[64], hdr[96], body[256];
        snprintf(key, sizeof key, "p%d-%07ld", t->idx, k);
        snprintf(hdr, sizeof hdr, "Idempotency-Key: %s", key);
        snprintf(body, sizeof body, "{\"type\":\"chaos\",\"queue\":\"%s\",\"dedup\":false,"
                 "\"cache\":false,\"max_attempts\":100,\"params\":{\"key\":\"%s\"}}", l->o.queue,
                 key);
        const char *h[] = {hdr, NULL};
        struct ts_http rq = {.method = "POST", .path = "/v1/jobs", .token = l->user,
                             .body = body, .headers = h};
        unsigned step = 0;
        for (int tries = 0;; tries++) {          /* a key in hand is finished, stop or not */
            struct resp r;
            long st = node_do(l, c, (int)((k + tries) % PGL_NODES), &rq, &r, NULL);
            if (st == 201 || st == 200) {
                ledger_create(l->lg, key, LG_OK, st, jstr(r.json, "id"));
                atomic_fetch_add(&l->created, 1);
                resp_free(&r);
                break;
            }
            ledger_create(l->lg, key, transient(st) ? LG_UNKNOWN : LG_FAIL, st, NULL);
            if (!transient(st)) {
                th_fail(__FILE__, __LINE__, "create %s -> %ld %s", key, st, r.body);
                resp_free(&r);
                break;
            }
            atomic_fetch_add(&l->unknowns, 1);
            resp_free(&r);
            backoff(&step);
        }
    }
    conns_close(c);
    return NULL;
}

static void count_done(struct pgl *l)
{
    int64_t b = (th_now_ms() - l->t0) / BUCKET_MS;
    if (b >= 0 && b < BUCKETS)
        atomic_fetch_add(&l->done[b], 1);
    atomic_fetch_add(&l->completed, 1);
}

/* Completes job id under lease, retrying unknowns with the same Idempotency-Key. */
static void complete_one(struct pgl *l, struct tsconn **c, int node, const char *id,
                         const char *lease, const char *key)
{
    char path[128], hdr[160], body[256];
    snprintf(path, sizeof path, "/v1/jobs/%s/complete", id);
    snprintf(hdr, sizeof hdr, "Idempotency-Key: c-%s-%s", id, lease);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":{\"key\":\"%s\"}}", lease,
             key);
    const char *h[] = {hdr, NULL};
    struct ts_http rq = {.method = "POST", .path = path, .token = l->worker, .body = body,
                         .headers = h};
    unsigned step = 0;
    for (int tries = 0;; tries++) {
        struct resp r;
        long st = node_do(l, c, (node + tries) % PGL_NODES, &rq, &r, NULL);
        bool replayed = !strcmp(r.replayed, "true");
        resp_free(&r);
        if (st == 200) {
            ledger_complete(l->lg, id, lease, LG_OK, st, replayed);
            count_done(l);
            return;
        }
        ledger_complete(l->lg, id, lease, transient(st) ? LG_UNKNOWN : LG_FAIL, st, false);
        if (!transient(st)) return;      /* 409: the lease is gone; the ledger judges it */
        atomic_fetch_add(&l->unknowns, 1);
        backoff(&step);
    }
}

/* One claim (up to 5 jobs, long-poll 200 ms) on node, each job completed; returns the
 * jobs claimed, -1 on a transient failure. */
static int work_round(struct pgl *l, struct tsconn **c, const char *wid, int node)
{
    char body[160], path[96];
    snprintf(body, sizeof body, "{\"worker_id\":\"%s\",\"max\":5,\"lease_ms\":%d,"
             "\"wait_ms\":200}", wid, l->o.lease_ms);
    snprintf(path, sizeof path, "/v1/queues/%s/claim", l->o.queue);
    struct ts_http rq = {.method = "POST", .path = path, .token = l->worker, .body = body};
    struct resp r;
    int used;
    long st = node_do(l, c, node, &rq, &r, &used);
    if (st != 200) {
        if (!transient(st)) th_fail(__FILE__, __LINE__, "claim -> %ld %s", st, r.body);
        resp_free(&r);
        return transient(st) ? -1 : 0;
    }
    json_t *jobs = jpath(r.json, "jobs");
    size_t n = json_array_size(jobs);
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_array_get(jobs, i);
        int64_t to = ts_parse_time(jstr(j, "lease_expires_at"));
        ledger_claim(l->lg, jstr(j, "id"), jstr(j, "lease_token"), to - l->o.lease_ms, to);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *j = json_array_get(jobs, i);
        const char *key = jstr(j, "params.key");
        complete_one(l, c, used, jstr(j, "id"), jstr(j, "lease_token"), key ? key : "");
    }
    resp_free(&r);
    return (int)n;
}

static void *worker(void *arg)
{
    struct pgl_thr *t = arg;
    struct pgl *l = t->l;
    struct tsconn *c[PGL_NODES];
    conns_open(l, c);
    char wid[32];
    snprintf(wid, sizeof wid, "cw%d", t->idx);
    unsigned step = 0;
    for (int round = t->idx; !atomic_load(&l->stop_work); round++) {
        int n = work_round(l, c, wid, round % PGL_NODES);
        if (n > 0) step = 0;
        else if (n < 0) backoff(&step);
    }
    conns_close(c);
    return NULL;
}

struct pgl *pgl_start(const struct pgl_opts *o)
{
    struct pgl *l = calloc(1, sizeof *l);
    l->o = *o;
    if (!l->o.producers) l->o.producers = 2;
    if (!l->o.workers) l->o.workers = 4;
    if (!l->o.lease_ms) l->o.lease_ms = 4000;
    if (!l->o.queue) l->o.queue = "cq";
    REQUIRE(l->o.producers <= THREADS_MAX && l->o.workers <= THREADS_MAX);
    l->done = calloc(BUCKETS, sizeof *l->done);
    /* node 1 on node 0's database: later flags win (see test_pg_cluster.c) */
    static const char *const lim[] = {"--active-limit", "0", NULL};
    struct testsrv_opts oa = {.real_clock = true, .extra = lim};
    l->n[0] = testsrv_start(&oa);
    snprintf(l->dbarg, sizeof l->dbarg, "%s", l->n[0]->db);
    l->xb[0] = "--active-limit"; l->xb[1] = "0"; l->xb[2] = "--db"; l->xb[3] = l->dbarg;
    struct testsrv_opts ob = {.real_clock = true, .extra = l->xb};   /* kept for restarts */
    l->n[1] = testsrv_start(&ob);
    l->user = ts_token(l->n[0], "chaos", "user");
    l->worker = ts_token(l->n[0], "chaosw", "worker");
    char logp[1024];
    snprintf(logp, sizeof logp, "%s/ledger.jsonl", th_tmproot());
    l->lg = ledger_new(logp);
    pthread_rwlockattr_t at;
    pthread_rwlockattr_init(&at);
    pthread_rwlockattr_setkind_np(&at, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    for (int i = 0; i < PGL_NODES; i++)
        pthread_rwlock_init(&l->lk[i], &at);
    l->t0 = th_now_ms();
    for (int i = 0; i < l->o.workers; i++) {
        l->wt[i] = (struct pgl_thr){l, i};
        REQUIRE_EQ(pthread_create(&l->work[i], NULL, worker, &l->wt[i]), 0);
    }
    for (int i = 0; i < l->o.producers; i++) {
        l->pt[i] = (struct pgl_thr){l, i};
        REQUIRE_EQ(pthread_create(&l->prod[i], NULL, producer, &l->pt[i]), 0);
    }
    return l;
}

struct testsrv *pgl_node(struct pgl *l, int i) { return l->n[i]; }
const char *pgl_worker_token(struct pgl *l) { return l->worker; }
const char *pgl_user_token(struct pgl *l) { return l->user; }
long pgl_created(struct pgl *l) { return atomic_load(&l->created); }
long pgl_completed(struct pgl *l) { return atomic_load(&l->completed); }
long pgl_unknowns(struct pgl *l) { return atomic_load(&l->unknowns); }
int64_t pgl_elapsed(struct pgl *l) { return th_now_ms() - l->t0; }

struct testsrv *pgl_live(struct pgl *l)
{
    for (int i = 0; i < PGL_NODES; i++)
        if (!atomic_load(&l->down[i]))
            return l->n[i];
    return NULL;
}

void pgl_kill_node(struct pgl *l, int i)
{
    atomic_store(&l->down[i], true);
    testsrv_kill9(l->n[i]);
}

void pgl_restart_node(struct pgl *l, int i)
{
    pthread_rwlock_wrlock(&l->lk[i]);
    testsrv_restart(l->n[i]);
    atomic_store(&l->down[i], false);
    pthread_rwlock_unlock(&l->lk[i]);
}

int pgl_term_node(struct pgl *l, int i, int64_t *ms)
{
    atomic_store(&l->down[i], true);
    int64_t t0 = th_now_ms();
    int st = testsrv_term(l->n[i]);
    *ms = th_now_ms() - t0;
    return st;
}

bool pgl_node_alive(struct pgl *l, int i)
{
    struct testsrv *s = l->n[i];
    return !atomic_load(&l->down[i]) && s->pid > 0 && waitpid(s->pid, NULL, WNOHANG) == 0;
}

double pgl_rate(struct pgl *l, int64_t from_ms, int64_t to_ms)
{
    int64_t a = from_ms / BUCKET_MS, b = to_ms / BUCKET_MS;
    if (a < 0) a = 0;
    if (b > BUCKETS) b = BUCKETS;
    long n = 0;
    for (int64_t i = a; i < b; i++)
        n += atomic_load(&l->done[i]);
    return b > a ? (double)n * 1000.0 / (double)((b - a) * BUCKET_MS) : 0.0;
}

void pgl_until(struct pgl *l, int64_t at_ms)
{
    rel_pace_until(l->t0 + at_ms);
}

int64_t pgl_recovered(struct pgl *l, int64_t from_ms, int64_t win_ms, double want,
                      int64_t deadline_ms)
{
    for (int64_t t = from_ms; t + win_ms <= deadline_ms; t += BUCKET_MS) {
        pgl_until(l, t + win_ms);             /* the window has been lived through */
        if (pgl_rate(l, t, t + win_ms) >= want)
            return t;
    }
    return -1;
}

static bool drained(void *arg)
{
    struct pgl *l = arg;
    struct testsrv *s = pgl_live(l);
    struct resp r;
    bool idle = s && ts_req(s, "GET", "/v1/stats", s->admin, NULL, &r) == 200 &&
                jint(r.json, "counts.pending") == 0 && jint(r.json, "counts.processing") == 0;
    if (s) resp_free(&r);
    return idle;
}

struct lg_counts pgl_finish(struct pgl *l, const char *label, int64_t timeout_ms)
{
    atomic_store(&l->stop_prod, true);
    for (int i = 0; i < l->o.producers; i++)
        pthread_join(l->prod[i], NULL);
    CHECK(poll_until(drained, l, timeout_ms));
    atomic_store(&l->stop_work, true);
    for (int i = 0; i < l->o.workers; i++)
        pthread_join(l->work[i], NULL);
    char q[64];
    snprintf(q, sizeof q, "&queue=%s", l->o.queue);
    long listed = rel_final_list(pgl_live(l), l->lg, q);
    struct lg_counts lc = ledger_check(l->lg, stderr, 10);
    ledger_print(&lc, stdout, label);
    CHECK_EQ(listed, lc.acked);
    CHECK_EQ(lc.lost, 0);
    CHECK_EQ(lc.dup_created, 0);
    CHECK_EQ(lc.completed_twice, 0);
    CHECK_EQ(lc.overlap, 0);
    CHECK_EQ(lc.unexpected, 0);
    CHECK(lc.acked > 0);
    return lc;
}

void pgl_free(struct pgl *l)
{
    for (int i = 0; i < PGL_NODES; i++)
        testsrv_stop(l->n[i]);         /* one killed or stopped already: just freed */
    ledger_free(l->lg);
    free(l->done);
    free(l);
}

PGconn *pgl_pg(struct pgl *l)
{
    PGconn *pc = PQconnectdb(l->n[0]->db);
    if (PQstatus(pc) != CONNECTION_OK) {
        fprintf(stderr, "  pgl_pg: %s", PQerrorMessage(pc));
        PQfinish(pc);
        return NULL;
    }
    return pc;
}

int64_t pgl_sql_int(PGconn *pc, const char *sql)
{
    PGresult *r = PQexec(pc, sql);
    int64_t v = INT64_MIN;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
        v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "  sql %s: %s", sql, PQerrorMessage(pc));
    PQclear(r);
    return v;
}
