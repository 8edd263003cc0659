/* test_pg_cluster.c - jobqd on PostgreSQL only (forces JOBQ_TEST_BACKEND=postgres):
 * row-level security holds for a query that forgot its user filter; two nodes
 * on one database (a long-poll claim on B wakes for a create on A, SSE on B
 * shows A's changes, kill -9 of the leader hands maintenance to the other,
 * which rescues the dead node's leases); PostgreSQL restarted under load and
 * backends killed: no acknowledged job lost, jobqd recovers by itself; creates
 * of several users at once (committed in groups, pg_combine.c) each get their
 * own job, and the result cache still answers inside a group. */
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "harness_pg.h"
#include "srvtest.h"

__attribute__((constructor)) static void force_postgres(void)
{
    setenv("JOBQ_TEST_BACKEND", "postgres", 1);
}

/* psql output of sql on the server's database, trimmed; "" on error. */
static char *sql1(struct testsrv *s, const char *sql)
{
    char *out = NULL;
    int rc = thpg_psql(s->db, sql, &out);
    if (rc != 0 || !out) {
        th_fail(__FILE__, __LINE__, "psql failed (%d): %s", rc, sql);
        free(out);
        return strdup("");
    }
    size_t n = strlen(out);
    while (n && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    return out;
}

#define CHECK_SQL(s, sql, want) do { char *o_ = sql1(s, sql); \
    CHECK_STR_EQ(o_, want); free(o_); } while (0)

TEST(rls_forgotten_user_filter_still_sees_only_own_rows)
{
    struct st_ctx c = st_setup();
    char a[TS_ID_MAX], b[TS_ID_MAX], lease[TS_ID_MAX];
    st_enq(c.s, c.alice, a, "{\"type\":\"t\",\"queue\":\"rq\"}");
    REQUIRE(ts_claim1(c.s, c.worker, "rq", NULL, lease));
    char body[256];
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"message\":\"alice secret\"}", lease);
    REQUIRE_EQ(st_post0(c.s, c.worker, a, "logs", body), 201);
    st_enq(c.s, c.bob, b, "{\"type\":\"t\",\"queue\":\"rq2\"}");
    /* the application role as the API uses it: SELECT without any user_id filter */
    const char *as_alice = "BEGIN; SET LOCAL ROLE jobq_app; SET LOCAL jobq.user_id = 'alice';";
    char q[512];
    snprintf(q, sizeof q, "%s SELECT string_agg(user_id, ',') FROM jobs; COMMIT", as_alice);
    CHECK_SQL(c.s, q, "alice");
    snprintf(q, sizeof q, "%s SELECT count(*) FROM job_logs; COMMIT", as_alice);
    CHECK_SQL(c.s, q, "1");
    snprintf(q, sizeof q, "%s SELECT count(*) FROM events WHERE user_id <> 'alice'; COMMIT",
             as_alice);
    CHECK_SQL(c.s, q, "0");
    snprintf(q, sizeof q, "%s UPDATE jobs SET priority = 5; COMMIT", as_alice);   /* no filter */
    CHECK_SQL(c.s, q, "");
    CHECK_SQL(c.s, "SELECT string_agg(user_id || ':' || priority, ',' ORDER BY user_id)"
                   " FROM jobs", "alice:5,bob:0");
    /* no user set: nothing at all */
    CHECK_SQL(c.s, "BEGIN; SET LOCAL ROLE jobq_app; SELECT count(*) FROM jobs; COMMIT", "0");
    /* a row for someone else cannot be written */
    char *out = NULL;
    snprintf(q, sizeof q, "%s INSERT INTO jobs(id,user_id,queue,type,params,status,run_at,"
             "created_at,updated_at,max_attempts) VALUES ('X','bob','q','t','{}','pending',0,0,"
             "0,1); COMMIT", as_alice);
    CHECK(thpg_psql(c.s->db, q, &out) != 0);
    free(out);
    /* the service role (workers, maintenance) sees everyone; the app role cannot bypass */
    CHECK_SQL(c.s, "BEGIN; SET LOCAL ROLE jobq_service; SELECT count(*) FROM jobs; COMMIT", "2");
    CHECK_SQL(c.s, "SELECT rolbypassrls FROM pg_roles WHERE rolname = 'jobq_app'", "f");
    CHECK_SQL(c.s, "SELECT string_agg(relname || ':' || relrowsecurity || relforcerowsecurity,"
                   " ',' ORDER BY relname) FROM pg_class WHERE relname IN"
                   " ('jobs','job_logs','events')", "events:truetrue,job_logs:truetrue,jobs:truetrue");
    /* and through the API, bob still gets 404 for alice's job */
    struct resp r;
    CHECK_EQ(ts_get(c.s, c.bob, a, &r), 404);
    resp_free(&r);
    /* table health for admins (issue 7, bloat) */
    CHECK_EQ(ts_req(c.s, "GET", "/v1/admin/tables", c.s->admin, NULL, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "backend"), "postgres");
    CHECK(json_array_size(jpath(r.json, "tables")) >= 10);
    resp_free(&r);
    CHECK_EQ(ts_req(c.s, "GET", "/v1/admin/tables", c.bob, NULL, &r), 403);
    resp_free(&r);
    testsrv_stop(c.s);
}

/* --- two nodes on one database --- */

struct two { struct testsrv *a, *b; const char *user, *worker; };

static struct two two_nodes(void)
{
    struct two t;
    struct testsrv_opts oa = {.real_clock = true};
    t.a = testsrv_start(&oa);
    const char *extra[] = {"--db", t.a->db, NULL};      /* later flags win */
    struct testsrv_opts ob = {.real_clock = true, .extra = extra};
    t.b = testsrv_start(&ob);
    t.user = ts_token(t.a, "alice", "user");
    t.worker = ts_token(t.a, "w", "worker");
    return t;
}

struct claim_bg { struct testsrv *s; const char *token; struct resp r; long st; int64_t ms; };

static void *claim_bg(void *arg)
{
    struct claim_bg *c = arg;
    struct tsconn *conn = tsconn_new(c->s);
    int64_t t0 = th_now_ms();
    c->st = tsconn_req(conn, "POST", "/v1/queues/lp/claim", c->token,
                       "{\"worker_id\":\"wb\",\"wait_ms\":20000}", &c->r);
    c->ms = th_now_ms() - t0;
    tsconn_free(conn);
    return NULL;
}

TEST(two_nodes_long_poll_on_b_wakes_for_create_on_a)
{
    struct two t = two_nodes();
    struct claim_bg bg = {.s = t.b, .token = t.worker};
    pthread_t th;
    pthread_create(&th, NULL, claim_bg, &bg);
    usleep(500 * 1000);                          /* B is parked in its long poll */
    char id[TS_ID_MAX];
    int64_t t0 = th_now_ms();
    st_enq(t.a, t.user, id, "{\"type\":\"t\",\"queue\":\"lp\"}");
    pthread_join(th, NULL);
    int64_t woke = th_now_ms() - t0;
    CHECK_EQ(bg.st, 200);
    CHECK_STR_EQ(jstr(bg.r.json, "jobs.0.id"), id);
    if (!CHECK(woke < 900))                      /* NOTIFY, not a poll interval */
        fprintf(stderr, "  woke after %lld ms\n", (long long)woke);
    resp_free(&bg.r);
    testsrv_stop(t.b);
    testsrv_stop(t.a);
}

struct sse { int fd; char buf[1 << 15]; size_t len; };

static bool sse_open(struct sse *c, struct testsrv *s, const char *token)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    c->len = 0;
    c->buf[0] = '\0';
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0)
        return false;
    char req[512];
    int n = snprintf(req, sizeof req, "GET /v1/events HTTP/1.0\r\nAuthorization: Bearer %s\r\n"
                     "Accept: text/event-stream\r\n\r\n", token);
    return write(c->fd, req, (size_t)n) == n;
}

/* Reads until needle shows up or the deadline passes. */
static bool sse_wait_for(struct sse *c, const char *needle, int timeout_ms)
{
    int64_t dl = th_now_ms() + timeout_ms;
    while (!strstr(c->buf, needle)) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        int64_t left = dl - th_now_ms();
        if (left <= 0 || poll(&p, 1, (int)left) != 1 || c->len >= sizeof c->buf - 1)
            return false;
        ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
        if (n <= 0)
            return false;
        c->len += (size_t)n;
        c->buf[c->len] = '\0';
    }
    return true;
}

TEST(two_nodes_sse_on_b_shows_changes_made_on_a)
{
    struct two t = two_nodes();
    static struct sse cl;
    REQUIRE(sse_open(&cl, t.b, t.user));
    REQUIRE(sse_wait_for(&cl, "\r\n\r\n", 5000));
    char id[TS_ID_MAX], lease[TS_ID_MAX], got[TS_ID_MAX];
    st_enq(t.a, t.user, id, "{\"type\":\"t\",\"queue\":\"sq\"}");
    int64_t t0 = th_now_ms();
    CHECK(sse_wait_for(&cl, "event: created", 3000));
    CHECK(strstr(cl.buf, id) != NULL);
    REQUIRE(ts_claim1(t.a, t.worker, "sq", got, lease));
    CHECK(sse_wait_for(&cl, "event: claimed", 3000));
    if (!CHECK(th_now_ms() - t0 < 2500))
        fprintf(stderr, "  events took %lld ms\n", (long long)(th_now_ms() - t0));
    close(cl.fd);
    testsrv_stop(t.b);
    testsrv_stop(t.a);
}

static bool log_has(struct testsrv *s, const char *needle)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/jobqd.log", s->dir);
    FILE *f = fopen(path, "r");
    char line[2048];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

TEST(leader_killed_other_node_takes_over_and_rescues_leases)
{
    struct two t = two_nodes();
    WAIT_FOR(log_has(t.a, "maintenance leader"), 5000);
    CHECK(!log_has(t.b, "maintenance leader"));          /* exactly one leader */
    char id[TS_ID_MAX];
    st_enq(t.a, t.user, id, "{\"type\":\"t\",\"queue\":\"lq\",\"max_attempts\":3}");
    struct resp r;
    REQUIRE_EQ(tsconn_req(t.a->conn, "POST", "/v1/queues/lq/claim", t.worker,
                          "{\"worker_id\":\"dies\",\"lease_ms\":1000}", &r), 200);
    REQUIRE_STR_EQ(jstr(r.json, "jobs.0.id"), id);
    resp_free(&r);
    testsrv_kill9(t.a);                                  /* leader and its worker gone */
    WAIT_FOR(log_has(t.b, "maintenance leader"), 5000);
    /* B's maintenance rescues the expired lease: back to pending, lease_expired */
    bool rescued = false;
    int64_t dl = th_now_ms() + 10000;
    while (!rescued && th_now_ms() < dl) {
        CHECK_EQ(ts_get(t.b, t.user, id, &r), 200);
        rescued = jstr(r.json, "error_code") && !strcmp(jstr(r.json, "error_code"),
                                                        "lease_expired");
        if (rescued)
            CHECK_STR_EQ(jstr(r.json, "status"), "pending");
        resp_free(&r);
        if (!rescued)
            usleep(100 * 1000);
    }
    CHECK(rescued);
    testsrv_stop(t.b);
}

/* A lease taken on the node that is not the leader: the leader's rescue learns of it
 * (maint_poke is local to the node that took it; the leader re-reads the due times every
 * second) and rescues it soon after it runs out, not a minute later. */
TEST(lease_taken_on_the_follower_is_rescued_by_the_leader_in_time)
{
    struct two t = two_nodes();
    WAIT_FOR(log_has(t.a, "maintenance leader"), 5000);
    char id[TS_ID_MAX];
    st_enq(t.b, t.user, id, "{\"type\":\"t\",\"queue\":\"fq\",\"max_attempts\":3}");
    struct resp r;
    REQUIRE_EQ(tsconn_req(t.b->conn, "POST", "/v1/queues/fq/claim", t.worker,
                          "{\"worker_id\":\"gone\",\"lease_ms\":1000}", &r), 200);
    int64_t expires = ts_parse_time(jstr(r.json, "jobs.0.lease_expires_at"));
    resp_free(&r);
    bool rescued = false;
    int64_t dl = th_now_ms() + 4000;              /* lease 1 s + sweep 1 s + slack */
    unsigned step = 0;
    while (!rescued && th_now_ms() < dl) {
        CHECK_EQ(ts_get(t.a, t.user, id, &r), 200);
        rescued = jstr(r.json, "error_code") && !strcmp(jstr(r.json, "error_code"),
                                                        "lease_expired");
        if (rescued)
            CHECK(ts_parse_time(jstr(r.json, "updated_at")) >= expires);
        resp_free(&r);
        if (!rescued)
            th_nap(&step);
    }
    CHECK(rescued);
    testsrv_stop(t.b);
    testsrv_stop(t.a);
}

/* --- PostgreSQL restarted / backends killed under load --- */

enum { LOAD_MAX = 4000 };

struct load {
    struct testsrv *s;
    const char *token;
    _Atomic bool stop;
    char (*ids)[TS_ID_MAX];
    int acked, refused;
};

static int load_acked(struct load *l)
{
    int n = __atomic_load_n(&l->acked, __ATOMIC_SEQ_CST);
    return n < LOAD_MAX ? n : LOAD_MAX;
}

struct load_goal { struct load *l; int n; };

static bool load_reached(void *arg)
{
    struct load_goal *g = arg;
    return load_acked(g->l) >= g->n;
}

static void *load_run(void *arg)
{
    struct load *l = arg;
    struct tsconn *conn = tsconn_new(l->s);
    for (int i = 0; !l->stop && load_acked(l) < LOAD_MAX; i++) {
        char body[128];
        struct resp r;
        snprintf(body, sizeof body, "{\"type\":\"t\",\"queue\":\"ld\",\"params\":{\"i\":%d},"
                 "\"dedup\":false}", i);
        long st = tsconn_req(conn, "POST", "/v1/jobs", l->token, body, &r);
        int k;                   /* two loaders share the list: take a slot atomically */
        if (st == 201 && jstr(r.json, "id") &&
            (k = __atomic_fetch_add(&l->acked, 1, __ATOMIC_SEQ_CST)) < LOAD_MAX)
            snprintf(l->ids[k], TS_ID_MAX, "%s", jstr(r.json, "id"));
        else if (st != 201)
            __atomic_fetch_add(&l->refused, 1, __ATOMIC_SEQ_CST);
        resp_free(&r);
        if (st != 201)
            usleep(20 * 1000);
    }
    tsconn_free(conn);
    return NULL;
}

static void check_all_acked(struct load *l)
{
    int lost = 0;
    for (int i = 0; i < load_acked(l); i++) {
        struct resp r;
        if (ts_get(l->s, l->token, l->ids[i], &r) != 200 && lost++ < 5)
            fprintf(stderr, "  acknowledged job %s lost\n", l->ids[i]);
        resp_free(&r);
    }
    CHECK_EQ(lost, 0);
}

TEST(postgres_restart_under_load_loses_no_acknowledged_job)
{
    struct testsrv_opts o = {.real_clock = true};
    struct testsrv *s = testsrv_start(&o);
    struct load l = {.s = s, .token = ts_token_limit(s, "loader", "user", 0)};
    l.ids = calloc(LOAD_MAX, sizeof *l.ids);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, load_run, &l);
    REQUIRE(poll_until(load_reached, &(struct load_goal){&l, 20}, 10000));   /* under load */
    int before = load_acked(&l);
    REQUIRE_EQ(thpg_restart_immediate(), 0);
    /* serving again: more creates acknowledged after the restart */
    CHECK(poll_until(load_reached, &(struct load_goal){&l, before + 20}, 30000));
    l.stop = true;
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    CHECK(before > 0);
    CHECK(l.acked > before);                         /* it kept serving after the restart */
    char id[TS_ID_MAX];
    st_enq(s, l.token, id, "{\"type\":\"t\",\"queue\":\"after\"}");   /* recovered */
    check_all_acked(&l);
    fprintf(stderr, "  acknowledged %d (before restart %d), refused %d\n", l.acked, before,
            l.refused);
    free(l.ids);
    testsrv_stop(s);
}

TEST(killed_backends_are_replaced_without_errors)
{
    struct testsrv_opts o = {.real_clock = true};
    struct testsrv *s = testsrv_start(&o);
    const char *u = ts_token_limit(s, "alice", "user", 0);
    char id[TS_ID_MAX], id2[TS_ID_MAX];
    st_enq(s, u, id, "{\"type\":\"t\"}");
    char *out = sql1(s, "SELECT count(*) > 0 FROM (SELECT pg_terminate_backend(pid) FROM"
                        " pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid()) x");
    CHECK_STR_EQ(out, "t");
    free(out);
    for (int i = 0; i < 20; i++) {                       /* each pooled connection once */
        struct resp r;
        CHECK_EQ(ts_get(s, u, id, &r), 200);
        resp_free(&r);
        st_enq(s, u, id2, "{\"type\":\"t\",\"params\":{\"n\":1}}");
    }
    WAIT_FOR(log_has(s, "listening for other nodes") , 3000);
    testsrv_stop(s);
}

/* --- creates of several users at once: pg_combine.c commits them in groups --- */

enum { GRP_USERS = 4, GRP_THREADS = 8, GRP_EACH = 20 };

struct grp {
    struct testsrv *s;
    const char *token;               /* this thread's user */
    const char *body;                /* NULL: distinct params per create */
    int t;                           /* thread number */
    char ids[GRP_EACH][TS_ID_MAX];   /* acknowledged creates */
    long status[GRP_EACH];
    int ok;
};

static void *grp_run(void *arg)
{
    struct grp *g = arg;
    struct tsconn *conn = tsconn_new(g->s);
    for (int i = 0; i < GRP_EACH; i++) {
        char body[160];
        struct resp r;
        snprintf(body, sizeof body, "{\"type\":\"t\",\"queue\":\"grp\",\"params\":{\"t\":%d,"
                 "\"i\":%d},\"dedup\":false}", g->t, i);
        g->status[i] = tsconn_req(conn, "POST", "/v1/jobs", g->token, g->body ? g->body : body,
                                  &r);
        if (g->status[i] / 100 == 2 && jstr(r.json, "id"))
            snprintf(g->ids[g->ok++], TS_ID_MAX, "%s", jstr(r.json, "id"));
        resp_free(&r);
    }
    tsconn_free(conn);
    return NULL;
}

static void grp_start(struct grp *g, pthread_t *th, struct testsrv *s, const char **tok,
                      const char *body)
{
    for (int t = 0; t < GRP_THREADS; t++) {
        g[t] = (struct grp){.s = s, .token = tok[t % GRP_USERS], .body = body, .t = t};
        REQUIRE_EQ(pthread_create(&th[t], NULL, grp_run, &g[t]), 0);
    }
    for (int t = 0; t < GRP_THREADS; t++)
        pthread_join(th[t], NULL);
}

TEST(concurrent_creates_of_several_users_each_get_their_own_job)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *tok[GRP_USERS];
    char name[GRP_USERS][16];
    for (int u = 0; u < GRP_USERS; u++) {
        snprintf(name[u], sizeof name[u], "user%d", u);
        tok[u] = ts_token_limit(s, name[u], "user", 0);    /* no limit: the grouped path */
    }
    static struct grp g[GRP_THREADS];
    pthread_t th[GRP_THREADS];
    grp_start(g, th, s, tok, NULL);
    for (int t = 0; t < GRP_THREADS; t++) {
        CHECK_EQ(g[t].ok, GRP_EACH);
        for (int i = 0; i < g[t].ok; i++) {
            struct resp r;
            CHECK_EQ(g[t].status[i], 201);
            CHECK_EQ(ts_get(s, g[t].token, g[t].ids[i], &r), 200);    /* its own user's */
            CHECK_STR_EQ(jstr(r.json, "user_id") ? jstr(r.json, "user_id") : "",
                         name[t % GRP_USERS]);
            CHECK_EQ(jint(r.json, "params.t"), t);                    /* its own params */
            CHECK_EQ(jint(r.json, "params.i"), i);
            resp_free(&r);
            CHECK_EQ(ts_get(s, tok[(t + 1) % GRP_USERS], g[t].ids[i], &r), 404);
            resp_free(&r);
            for (int u = 0; u <= t; u++)                              /* no id twice */
                for (int k = 0; k < (u == t ? i : g[u].ok); k++)
                    CHECK(strcmp(g[u].ids[k], g[t].ids[i]) != 0);
        }
    }
    /* the result cache inside a group: a completed identical job answers every create */
    const char *worker = ts_token(s, "w", "worker");
    const char *same = "{\"type\":\"c\",\"queue\":\"grc\",\"params\":{\"x\":1},\"dedup\":false}";
    struct resp r;
    REQUIRE_EQ(st_create(s, tok[0], same, &r), 201);
    char done[TS_ID_MAX];
    snprintf(done, sizeof done, "%s", jstr(r.json, "id") ? jstr(r.json, "id") : "");
    resp_free(&r);
    st_claim_complete(s, worker, "grc", "{\"ok\":true}", NULL);
    grp_start(g, th, s, tok, same);
    for (int t = 0; t < GRP_THREADS; t++) {
        CHECK_EQ(g[t].ok, GRP_EACH);
        for (int i = 0; i < g[t].ok; i++) {
            bool own = t % GRP_USERS == 0;          /* only user0 has the completed job */
            CHECK_EQ(g[t].status[i], own ? 200 : 201);
            if (own)
                CHECK_STR_EQ(g[t].ids[i], done);
        }
    }
    testsrv_stop(s);
}

TEST_MAIN()
