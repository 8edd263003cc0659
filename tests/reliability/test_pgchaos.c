/*
 * test_pgchaos.c - RELIABILITY.md T13: PostgreSQL chaos. Two jobqd nodes on one database
 * of the harness's private PostgreSQL 15 cluster, under the keyed load of pgload.c.
 *
 * The five chaos cells of the public PostgreSQL job-queue benchmark, at 1/5 of its rates
 * (120 creates/s offered; the repeated-kill cell 60/s):
 *   pg_restart     pg_ctl stop -m immediate, 2 s down, start
 *   backend_kill   pg_terminate_backend of every jobqd backend twice a second
 *   idle_conns     300 idle connections held (with one pool-wide backend kill while held)
 *   node_kill      kill -9 node 0 (the maintenance leader): node 1 carries on alone
 *   repeated_kill  kill -9 a node every 4 s (JQ_LONG: 20 s), restarted at once
 * Each: 4 s of baseline, the fault, then throughput back to >= 90 % of the baseline
 * (a 2 s window) within 30 s of the fault's end; no jobqd exits unless killed; after a
 * final drain the ledger finds lost 0, dup_created 0, completed_twice 0, overlap 0.
 *
 * And three properties of the node-to-node wake-ups (pg_notify.c, pg_due.c):
 *   - at most one NOTIFY per committed transaction (a LISTEN session of the test counts
 *     them; jobqd's /v1/admin/store counts commits and claim transactions);
 *   - the LISTEN sessions killed: a job created on node 0 is still claimed by a
 *     long-poll on node 1 within the polling fallback's second (plus slack);
 *   - 32 idle long-pollers (16 per node) and one job: at most 2 claim transactions.
 */
#include "rel.h"
#include "harness_pg.h"
#include "pgload.h"

#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

__attribute__((constructor)) static void force_postgres(void)
{
    setenv("JOBQ_TEST_BACKEND", "postgres", 1);
}

enum { BASE_MS = 4000, WIN_MS = 2000, RECOVER_MS = 30000 };

/* Terminates every backend of the database except the caller's (and, with listen_only,
 * only jobqd's LISTEN sessions, which it names "jobqd listener"); returns how many. */
static int64_t kill_backends(PGconn *pc, bool listen_only)
{
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM"
             " pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
             "%s) x", listen_only ? " AND application_name = 'jobqd listener'" : "");
    return pgl_sql_int(pc, sql);
}

/* --- the chaos cells --- */

struct cell {
    const char *name;
    int rate;
    int64_t (*fault)(struct pgl *l, PGconn *pc);   /* runs the fault; returns its count */
    bool kills_nodes;
};

static int64_t f_pg_restart(struct pgl *l, PGconn *pc)
{
    (void)pc;
    int n = REL_N(1, 3);
    for (int i = 0; i < n; i++) {
        REQUIRE_EQ(thpg_down(), 0);
        pgl_until(l, pgl_elapsed(l) + 2000);        /* the database is down for 2 s */
        REQUIRE_EQ(thpg_up(), 0);
        if (i + 1 < n)
            pgl_until(l, pgl_elapsed(l) + 5000);
    }
    return n;
}

static int64_t f_backend_kill(struct pgl *l, PGconn *pc)
{
    int64_t end = pgl_elapsed(l) + REL_N(5000, 60000), killed = 0;
    for (int64_t t = pgl_elapsed(l); t < end; t += 500) {       /* 2/s */
        pgl_until(l, t);
        int64_t k = kill_backends(pc, false);
        if (k > 0) killed += k;
    }
    return killed;
}

static int64_t f_idle_conns(struct pgl *l, PGconn *pc)
{
    enum { IDLE = 300 };
    PGconn **idle = calloc(IDLE, sizeof *idle);
    int held = 0;
    for (int i = 0; i < IDLE; i++) {
        idle[i] = PQconnectdb(pgl_node(l, 0)->db);
        held += PQstatus(idle[i]) == CONNECTION_OK;
    }
    CHECK_EQ(held, IDLE);
    int64_t t = pgl_elapsed(l);
    pgl_until(l, t + REL_N(2000, 20000));
    int64_t killed = kill_backends(pc, false);   /* the pools reconnect beside the 300 */
    pgl_until(l, pgl_elapsed(l) + REL_N(3000, 20000));
    for (int i = 0; i < IDLE; i++)
        PQfinish(idle[i]);
    free(idle);
    return killed > 0 ? held : -1;
}

static int64_t f_node_kill(struct pgl *l, PGconn *pc)
{
    (void)pc;
    pgl_kill_node(l, 0);
    pgl_until(l, pgl_elapsed(l) + REL_N(5000, 30000));  /* node 1 alone */
    pgl_restart_node(l, 0);
    return 1;
}

static int64_t f_repeated_kill(struct pgl *l, PGconn *pc)
{
    (void)pc;
    int gap = REL_N(4000, 20000), kills = REL_N(3, 6);
    for (int k = 0; k < kills; k++) {
        pgl_until(l, pgl_elapsed(l) + gap);
        pgl_kill_node(l, k % PGL_NODES);
        pgl_restart_node(l, k % PGL_NODES);
    }
    return kills;
}

static void run_cell(const struct cell *c)
{
    th_set_timeout((unsigned)REL_N(240, 1800));
    struct pgl *l = pgl_start(&(struct pgl_opts){.rate = c->rate});
    PGconn *pc = pgl_pg(l);
    REQUIRE(pc);
    pgl_until(l, BASE_MS);
    double base = pgl_rate(l, 1000, BASE_MS);       /* the first second warms up */
    int64_t f0 = pgl_elapsed(l);
    int64_t faults = c->fault(l, pc);
    int64_t fe = pgl_elapsed(l);
    CHECK(faults > 0);
    /* the fault may have killed the test's own session */
    if (PQstatus(pc) != CONNECTION_OK || pgl_sql_int(pc, "SELECT 1") != 1) {
        PQfinish(pc);
        pc = pgl_pg(l);
    }
    int64_t back = pgl_recovered(l, fe, WIN_MS, 0.9 * base, fe + RECOVER_MS);
    CHECK(back >= 0);
    bool alive = true;
    for (int i = 0; i < PGL_NODES; i++)
        alive &= CHECK(pgl_node_alive(l, i));         /* no process exit */
    double during = pgl_rate(l, f0, fe > f0 ? fe : f0 + 1);
    long created = pgl_created(l), unknowns = pgl_unknowns(l);
    struct lg_counts lc = pgl_finish(l, c->name, 90000);
    printf("  t13 %s: offered %d/s, baseline %.1f/s, during fault %.1f/s (%.1f s, %lld "
           "faults), >= 90%% again %.1f s after it, acked %ld, unknown outcomes %ld, "
           "recovered %ld, lost %ld, completed_twice %ld, nodes alive %s\n", c->name, c->rate,
           base, during, (double)(fe - f0) / 1000, (long long)faults,
           back >= 0 ? (double)(back - fe) / 1000 : -1.0, created, unknowns, lc.recovered,
           lc.lost, lc.completed_twice, alive ? "yes" : "NO");
    PQfinish(pc);
    pgl_free(l);
}

TEST(t13_pg_restart)
{
    run_cell(&(struct cell){"pg_restart", 120, f_pg_restart, false});
}

TEST(t13_backend_kill)
{
    run_cell(&(struct cell){"backend_kill", 120, f_backend_kill, false});
}

TEST(t13_idle_conns)
{
    run_cell(&(struct cell){"idle_conns", 120, f_idle_conns, false});
}

TEST(t13_node_kill)
{
    run_cell(&(struct cell){"node_kill", 120, f_node_kill, true});
}

TEST(t13_repeated_kill)
{
    run_cell(&(struct cell){"repeated_kill", 60, f_repeated_kill, true});
}

/* --- wake-ups between nodes --- */

struct two { struct testsrv *a, *b; const char *user, *worker; };

static struct two two_nodes(void)
{
    struct two t;
    struct testsrv_opts oa = {.real_clock = true};
    t.a = testsrv_start(&oa);
    const char *extra[] = {"--db", t.a->db, NULL};
    struct testsrv_opts ob = {.real_clock = true, .extra = extra};
    t.b = testsrv_start(&ob);
    t.user = ts_token_limit(t.a, "alice", "user", 0);
    t.worker = ts_token(t.a, "w", "worker");
    return t;
}

static void two_stop(struct two *t)
{
    testsrv_stop(t->b);
    testsrv_stop(t->a);
}

/* claim transactions run by node s (GET /v1/admin/store) */
static int64_t claims_of(struct testsrv *s)
{
    struct resp r;
    int64_t v = ts_req(s, "GET", "/v1/admin/store", s->admin, NULL, &r) == 200
                ? jint(r.json, "claims") : INT64_MIN;
    resp_free(&r);
    return v;
}

static int64_t commits_of(struct testsrv *s)
{
    int64_t ops, commits;
    return ts_store_counters(s, &ops, &commits) == 0 ? commits : INT64_MIN;
}

TEST(t13_at_most_one_notify_per_commit)
{
    struct two t = two_nodes();
    PGconn *ls = PQconnectdb(t.a->db);
    REQUIRE(PQstatus(ls) == CONNECTION_OK);
    PQclear(PQexec(ls, "LISTEN jobq"));
    int64_t c0 = commits_of(t.a) + commits_of(t.b) + claims_of(t.a) + claims_of(t.b);
    /* creates on both nodes, claims of up to 3, completes, a batch of 10 */
    enum { N = 60 };
    struct testsrv *node[2] = {t.a, t.b};
    for (int i = 0; i < N; i++) {
        char id[TS_ID_MAX], body[128];
        snprintf(body, sizeof body, "{\"type\":\"n\",\"queue\":\"nq\",\"params\":{\"i\":%d}}", i);
        REQUIRE_EQ(ts_enqueue(node[i % 2], t.user, body, id), 201);
    }
    struct resp r;
    for (int i = 0; i < N / 3; i++) {
        REQUIRE_EQ(ts_claim(node[i % 2], t.worker, "nq", "{\"worker_id\":\"n\",\"max\":3}", &r),
                   200);
        json_t *jobs = jpath(r.json, "jobs");
        for (size_t k = 0; k < json_array_size(jobs); k++) {
            json_t *j = json_array_get(jobs, k);
            char body[160];
            snprintf(body, sizeof body, "{\"lease_token\":\"%s\"}", jstr(j, "lease_token"));
            struct resp rc;
            CHECK_EQ(ts_reqf(node[k % 2], "POST", t.worker, body, &rc, "/v1/jobs/%s/complete",
                             jstr(j, "id")), 200);
            resp_free(&rc);
        }
        resp_free(&r);
    }
    CHECK_EQ(ts_req(t.b, "POST", "/v1/jobs/batch", t.user, "{\"jobs\":[{\"type\":\"b\"},"
                    "{\"type\":\"b\"},{\"type\":\"b\"},{\"type\":\"b\"},{\"type\":\"b\"},"
                    "{\"type\":\"b\"},{\"type\":\"b\"},{\"type\":\"b\"},{\"type\":\"b\"},"
                    "{\"type\":\"b\"}]}", &r), 201);
    resp_free(&r);
    int64_t c1 = commits_of(t.a) + commits_of(t.b) + claims_of(t.a) + claims_of(t.b);
    /* a sentinel after everything: notifications arrive in commit order */
    PGconn *pc = PQconnectdb(t.a->db);
    PQclear(PQexec(pc, "NOTIFY jobq, 'sentinel'"));
    PQfinish(pc);
    long notifies = 0;
    bool sentinel = false;
    int64_t dl = th_now_ms() + 10000;
    unsigned step = 0;
    while (!sentinel && th_now_ms() < dl) {
        PQconsumeInput(ls);
        PGnotify *n;
        while ((n = PQnotifies(ls))) {
            if (!strcmp(n->extra, "sentinel")) sentinel = true;
            else notifies++;
            PQfreemem(n);
        }
        if (!sentinel) th_nap(&step);
    }
    CHECK(sentinel);
    int64_t commits = c1 - c0;
    printf("  t13 notify: %ld NOTIFYs for %lld committed transactions (writes and claims "
           "of both nodes)\n", notifies, (long long)commits);
    CHECK(notifies >= N);                     /* every create made work claimable */
    CHECK(notifies <= commits);
    PQfinish(ls);
    two_stop(&t);
}

struct poller { struct testsrv *s; const char *token; const char *queue; int wait_ms;
                atomic_int *got; long st; int64_t ms; };

static void *poller_run(void *arg)
{
    struct poller *p = arg;
    struct tsconn *c = tsconn_new(p->s);
    char path[96], body[96];
    snprintf(path, sizeof path, "/v1/queues/%s/claim", p->queue);
    snprintf(body, sizeof body, "{\"worker_id\":\"lp\",\"wait_ms\":%d}", p->wait_ms);
    struct resp r;
    int64_t t0 = th_now_ms();
    p->st = tsconn_req(c, "POST", path, p->token, body, &r);
    p->ms = th_now_ms() - t0;
    if (p->st == 200 && json_array_size(jpath(r.json, "jobs")) > 0)
        atomic_fetch_add(p->got, 1);
    resp_free(&r);
    tsconn_free(c);
    return NULL;
}

TEST(t13_listen_sessions_killed_jobs_still_claimed)
{
    struct two t = two_nodes();
    PGconn *pc = PQconnectdb(t.a->db);
    REQUIRE(PQstatus(pc) == CONNECTION_OK);
    atomic_int got = 0;
    struct poller p = {t.b, t.worker, "lk", 20000, &got, 0, 0};
    int64_t k0 = claims_of(t.b);
    pthread_t th;
    REQUIRE_EQ(pthread_create(&th, NULL, poller_run, &p), 0);
    WAIT_FOR(claims_of(t.b) > k0, 5000);             /* its first claim found nothing */
    int64_t killed = kill_backends(pc, true);
    CHECK(killed >= 2);                               /* both nodes' LISTEN sessions */
    char id[TS_ID_MAX];
    int64_t c0 = th_now_ms();
    REQUIRE_EQ(ts_enqueue(t.a, t.user, "{\"type\":\"t\",\"queue\":\"lk\"}", id), 201);
    pthread_join(th, NULL);
    int64_t waited = th_now_ms() - c0;
    CHECK_EQ(p.st, 200);
    CHECK_EQ(atomic_load(&got), 1);
    printf("  t13 listen killed: %lld sessions ended, job created on A claimed on B after "
           "%lld ms\n", (long long)killed, (long long)waited);
    CHECK(waited <= 2500);      /* the 1 s polling fallback (or the reconnected LISTEN) */
    /* and the sessions come back: a later create wakes a long-poll on B as quickly */
    WAIT_FOR(rel_log_count(t.b, "listening for other nodes") >= 2, 5000);
    WAIT_FOR(rel_log_count(t.a, "listening for other nodes") >= 2, 5000);
    PQfinish(pc);
    two_stop(&t);
}

TEST(t13_idle_long_pollers_one_job_two_claims_at_most)
{
    enum { PER_NODE = 16 };
    struct two t = two_nodes();
    struct testsrv *node[2] = {t.a, t.b};
    atomic_int got = 0;
    struct poller p[2 * PER_NODE];
    pthread_t th[2 * PER_NODE];
    int64_t k0[2] = {claims_of(t.a), claims_of(t.b)};
    for (int i = 0; i < 2 * PER_NODE; i++) {
        p[i] = (struct poller){node[i % 2], t.worker, "ip", 30000, &got, 0, 0};
        REQUIRE_EQ(pthread_create(&th[i], NULL, poller_run, &p[i]), 0);
    }
    /* every poller made its first claim (found nothing) and sleeps */
    WAIT_FOR(claims_of(t.a) - k0[0] >= PER_NODE && claims_of(t.b) - k0[1] >= PER_NODE, 10000);
    int64_t k1 = claims_of(t.a) + claims_of(t.b);
    char id[TS_ID_MAX];
    REQUIRE_EQ(ts_enqueue(t.a, t.user, "{\"type\":\"t\",\"queue\":\"ip\"}", id), 201);
    WAIT_FOR(atomic_load(&got) == 1, 5000);
    /* and for a second after it, no further claim transactions: the wake-ups of both
     * nodes (A's commit, B's NOTIFY) cost one claim each at most */
    int64_t worst = 0, end = th_now_ms() + 1000;
    unsigned step = 0;
    while (th_now_ms() < end) {
        int64_t d = claims_of(t.a) + claims_of(t.b) - k1;
        if (d > worst) worst = d;
        th_nap(&step);
    }
    printf("  t13 idle pollers: %d long-polls, 1 job -> %lld claim transactions\n",
           2 * PER_NODE, (long long)worst);
    CHECK(worst >= 1);
    CHECK(worst <= 2);
    CHECK_EQ(atomic_load(&got), 1);
    /* release the others: one job each */
    for (int i = 1; i < 2 * PER_NODE; i++)
        REQUIRE_EQ(ts_enqueue(t.a, t.user, "{\"type\":\"t\",\"queue\":\"ip\","
                              "\"dedup\":false}", id), 201);
    for (int i = 0; i < 2 * PER_NODE; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ(atomic_load(&got), 2 * PER_NODE);
    two_stop(&t);
}

TEST_MAIN()
