/*
 * test_matrix.c - RELIABILITY.md T15 (tenant matrix, BOLA/BFLA) and T17 (token handling).
 *
 * T15: the route table comes from the server (GET /v1/admin/routes); every route x caller
 * {owner, other user, worker, admin, none, revoked, malformed} is requested against a
 * fresh fixture owned by the owner and must answer the status in EXPECT below. A route the
 * server has and EXPECT lacks fails the test (so does a stale row). Whenever the other
 * user touches the owner's object, the reply must be byte-identical (status, body,
 * content type, statement count) to the reply for an id that does not exist.
 *
 * T17: no token text (whole, or any 12-character piece of its secret) appears in the
 * database file, its WAL or jobqd's log; a revoked token is refused on its next request.
 * And a noisy neighbour: tenant A offers creates at 10x its limit (active limit 10, 100
 * creates/s, nearly all refused 429 with Retry-After) while tenant B's enqueue p99 stays
 * under 2x what it is alone (+1 ms for the clock's grain).
 */
#include "rel.h"

#include <stdatomic.h>
#include <time.h>

enum caller { C_OWNER, C_OTHER, C_WORKER, C_ADMIN, C_NONE, C_REVOKED, C_MALFORMED, NCALLER };
static const char *const CALLER[NCALLER] = { "owner", "other", "worker", "admin", "none",
                                             "revoked", "malformed" };

/* What {} stands for, created fresh for every cell. */
enum fix { F_NONE, F_JOB, F_JOB_PROC, F_JOB_DONE, F_QUEUE, F_SCHED, F_WF, F_TOKEN, F_TASK,
           F_UIFILE };

struct row {
    const char *method, *pattern;
    enum fix fix;
    const char *query;        /* appended to the path */
    const char *body;         /* %L = lease, %J = the job id, %N = a unique name */
    short st[4];              /* owner, other, worker, admin; none/revoked/malformed: 401 on
                                 /v1, else the owner's status */
};

#define OPEN_ALL(s) { s, s, s, s }
static const struct row EXPECT[] = {
    { "GET", "/healthz", F_NONE, "", NULL, OPEN_ALL(200) },
    { "POST", "/v1/jobs", F_NONE, "", "{\"type\":\"t\",\"params\":{\"n\":\"%N\"}}", { 201, 201, 403, 201 } },
    { "GET", "/v1/jobs", F_NONE, "", NULL, { 200, 200, 200, 200 } },
    { "POST", "/v1/jobs/batch", F_NONE, "", "{\"jobs\":[{\"type\":\"t\"}]}", { 201, 201, 403, 201 } },
    { "POST", "/v1/jobs/cancel", F_JOB, "", "{\"ids\":[\"%J\"]}", { 200, 200, 403, 200 } },
    { "GET", "/v1/jobs/{}", F_JOB, "", NULL, { 200, 404, 200, 200 } },
    { "DELETE", "/v1/jobs/{}", F_JOB_DONE, "", NULL, { 204, 404, 403, 204 } },
    { "POST", "/v1/jobs/{}/cancel", F_JOB, "", NULL, { 200, 404, 403, 200 } },
    { "POST", "/v1/jobs/{}/retry", F_JOB_DONE, "", NULL, { 200, 404, 403, 200 } },
    { "POST", "/v1/jobs/{}/heartbeat", F_JOB_PROC, "", "{\"lease_token\":\"%L\"}", { 403, 403, 200, 200 } },
    { "POST", "/v1/jobs/{}/complete", F_JOB_PROC, "", "{\"lease_token\":\"%L\"}", { 403, 403, 200, 200 } },
    { "POST", "/v1/jobs/{}/fail", F_JOB_PROC, "", "{\"lease_token\":\"%L\",\"error_message\":\"e\"}", { 403, 403, 200, 200 } },
    { "POST", "/v1/jobs/{}/logs", F_JOB_PROC, "", "{\"lease_token\":\"%L\",\"level\":\"info\",\"message\":\"m\"}", { 403, 403, 201, 201 } },
    { "GET", "/v1/jobs/{}/logs", F_JOB, "", NULL, { 200, 404, 200, 200 } },
    { "POST", "/v1/queues/{}/claim", F_QUEUE, "", "{\"worker_id\":\"m\"}", { 403, 403, 200, 200 } },
    { "POST", "/v1/queues/{}/next", F_QUEUE, "", "{\"worker_id\":\"m\",\"max\":0}", { 403, 403, 200, 200 } },
    { "GET", "/v1/stats", F_NONE, "", NULL, { 200, 200, 200, 200 } },
    { "GET", "/v1/events", F_NONE, "", NULL, { 200, 200, 200, 200 } },
    { "POST", "/v1/schedules", F_NONE, "", "{\"name\":\"%N\",\"cron\":\"@daily\",\"type\":\"t\"}", { 201, 201, 403, 201 } },
    { "GET", "/v1/schedules", F_NONE, "", NULL, { 200, 200, 403, 200 } },
    { "GET", "/v1/schedules/{}", F_SCHED, "", NULL, { 200, 404, 403, 200 } },
    { "DELETE", "/v1/schedules/{}", F_SCHED, "", NULL, { 204, 404, 403, 204 } },
    { "POST", "/v1/schedules/{}/pause", F_SCHED, "", NULL, { 200, 404, 403, 200 } },
    { "POST", "/v1/schedules/{}/resume", F_SCHED, "", NULL, { 200, 404, 403, 200 } },
    { "POST", "/v1/workflows", F_NONE, "", "{\"steps\":[{\"key\":\"a\",\"type\":\"t\"}]}", { 201, 201, 403, 201 } },
    { "GET", "/v1/workflows/{}", F_WF, "", NULL, { 200, 404, 403, 200 } },
    { "GET", "/v1/logs/search", F_NONE, "?q=hello", NULL, { 200, 200, 200, 200 } },
    { "GET", "/v1/jobs/{}/wait", F_JOB, "?timeout_ms=0", NULL, { 200, 404, 200, 200 } },
    { "POST", "/v1/tokens", F_NONE, "", "{\"user_id\":\"%N\",\"role\":\"user\"}", { 403, 403, 403, 201 } },
    { "DELETE", "/v1/tokens/{}", F_TOKEN, "", NULL, { 403, 403, 403, 204 } },
    { "GET", "/v1/admin/store", F_NONE, "", NULL, { 403, 403, 403, 200 } },
    { "GET", "/v1/admin/maintenance", F_NONE, "", NULL, { 403, 403, 403, 200 } },
    { "POST", "/v1/admin/maintenance/{}", F_TASK, "", NULL, { 403, 403, 403, 200 } },
    { "POST", "/v1/admin/clock", F_NONE, "", "{\"advance_ms\":0}", { 403, 403, 403, 200 } },
    { "GET", "/v1/admin/routes", F_NONE, "", NULL, { 403, 403, 403, 200 } },
    { "GET", "/v1/admin/tables", F_NONE, "", NULL, { 403, 403, 403, 200 } },
    { "GET", "/v1/openapi.json", F_NONE, "", NULL, { 200, 200, 200, 200 } },
    { "GET", "/readyz", F_NONE, "", NULL, OPEN_ALL(200) },
    /* /metrics checks its own token (admin or --metrics-token): a valid user or worker
     * token gets 401 there, not the 403 of /v1 routes */
    { "GET", "/metrics", F_NONE, "", NULL, { 401, 401, 401, 200 } },
    { "GET", "/ui", F_NONE, "", NULL, OPEN_ALL(200) },
    { "GET", "/ui/{}", F_UIFILE, "", NULL, OPEN_ALL(200) },
};
enum { NROWS = sizeof EXPECT / sizeof EXPECT[0] };

struct mx {
    struct testsrv *s;
    const char *tok[NCALLER];
    int seq;
};

/* A fixture: the value for {} (and the lease for %L, the job for %J). */
struct fx { char val[TS_ID_MAX], lease[TS_ID_MAX], job[TS_ID_MAX]; };

static void make_fixture(struct mx *m, enum fix f, struct fx *x)
{
    struct resp r;
    char body[256];
    const char *owner = m->tok[C_OWNER];
    memset(x, 0, sizeof *x);
    m->seq++;
    switch (f) {
    case F_JOB: case F_JOB_PROC: case F_JOB_DONE: {
        snprintf(body, sizeof body, "{\"type\":\"t\",\"queue\":\"mx%d\"}", m->seq);
        st_enq(m->s, owner, x->val, body);
        if (f == F_JOB_PROC) {
            snprintf(body, sizeof body, "mx%d", m->seq);
            REQUIRE(ts_claim1(m->s, m->s->admin, body, NULL, x->lease));
        } else if (f == F_JOB_DONE) {
            REQUIRE_EQ(st_post0(m->s, owner, x->val, "cancel", NULL), 200);
        }
        break;
    }
    case F_QUEUE:
        snprintf(x->val, sizeof x->val, "mq%d", m->seq);
        break;
    case F_SCHED:
        snprintf(body, sizeof body, "{\"name\":\"fx%d\",\"cron\":\"@hourly\",\"type\":\"t\"}", m->seq);
        REQUIRE_EQ(ts_req(m->s, "POST", "/v1/schedules", owner, body, &r), 201);
        snprintf(x->val, sizeof x->val, "%s", jstr(r.json, "id"));
        resp_free(&r);
        break;
    case F_WF:
        REQUIRE_EQ(ts_req(m->s, "POST", "/v1/workflows", owner,
                          "{\"steps\":[{\"key\":\"a\",\"type\":\"t\"}]}", &r), 201);
        snprintf(x->val, sizeof x->val, "%s", jstr(r.json, "id"));
        resp_free(&r);
        break;
    case F_TOKEN: {
        char u[32];
        snprintf(u, sizeof u, "victim%d", m->seq);
        ts_token_id(m->s, u, "user", x->val);
        break;
    }
    case F_TASK: snprintf(x->val, sizeof x->val, "rescue"); break;
    case F_UIFILE: snprintf(x->val, sizeof x->val, "app.js"); break;
    case F_NONE: break;
    }
    snprintf(x->job, sizeof x->job, "%s", x->val);
}

/* Expands %L %J %N in a body template. */
static void expand(const char *tpl, const struct fx *x, int seq, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = tpl; *p && n + 1 < cap; p++) {
        if (p[0] == '%' && (p[1] == 'L' || p[1] == 'J' || p[1] == 'N')) {
            char tmp[64];
            snprintf(tmp, sizeof tmp, "%s", p[1] == 'L' ? x->lease : p[1] == 'J' ? x->job : "");
            if (p[1] == 'N') snprintf(tmp, sizeof tmp, "n%d", seq);
            n += (size_t)snprintf(out + n, cap - n, "%s", tmp);
            p++;
        } else {
            out[n++] = *p;
        }
    }
    out[n < cap ? n : cap - 1] = '\0';
}

static void fill_path(const struct row *w, const char *val, char *out, size_t cap)
{
    const char *br = strstr(w->pattern, "{}");
    if (br)
        snprintf(out, cap, "%.*s%s%s%s", (int)(br - w->pattern), w->pattern, val, br + 2, w->query);
    else
        snprintf(out, cap, "%s%s", w->pattern, w->query);
}

/* One request; SSE routes through a raw socket (status line only). */
static long call(struct mx *m, const struct row *w, enum caller c, const char *path,
                 const char *body, struct resp *out)
{
    memset(out, 0, sizeof *out);
    if (!strcmp(w->pattern, "/v1/events")) {
        char req[1024], buf[4096];
        const char *t = m->tok[c];
        snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n%s%s%sConnection: close\r\n\r\n",
                 path, t ? "Authorization: Bearer " : "", t ? t : "", t ? "\r\n" : "");
        int fd = rel_connect(m->s->port);
        if (fd < 0) return 0;
        rel_send_all(fd, req, strlen(req));
        size_t n = 0;                     /* read until the end of the headers */
        int64_t dl = th_now_ms() + 5000;
        while (n + 1 < sizeof buf && th_now_ms() < dl) {
            n += rel_read_all(fd, buf + n, sizeof buf - n, 200);
            if (strstr(buf, "\r\n\r\n")) break;
        }
        close(fd);
        out->status = rel_status(buf);
        out->body = strdup(rel_body(buf));
        return out->status;
    }
    struct ts_http rq = { .method = w->method, .path = path, .token = m->tok[c], .body = body };
    return ts_do(m->s, &rq, out);
}

static long expected(const struct row *w, enum caller c)
{
    if (c < C_NONE) return w->st[c];
    bool v1 = !strncmp(w->pattern, "/v1/", 4);
    return v1 ? 401 : w->st[C_OWNER];
}

/* Mutates the last character of an id: same shape, no such object. */
static void missing_id(const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s", id);
    size_t n = strlen(out);
    if (n) out[n - 1] = out[n - 1] == 'Z' ? 'Y' : 'Z';
}

static const struct row *find_row(const char *method, const char *pattern)
{
    for (int i = 0; i < NROWS; i++)
        if (!strcmp(EXPECT[i].method, method) && !strcmp(EXPECT[i].pattern, pattern))
            return &EXPECT[i];
    return NULL;
}

TEST(t15_tenant_matrix_from_the_route_table)
{
    static const char *const extra[] = { "--active-limit", "0", NULL };
    struct mx m = { .s = st_start_with(extra) };
    char rid[TS_ID_MAX];
    m.tok[C_OWNER] = ts_token(m.s, "alice", "user");
    m.tok[C_OTHER] = ts_token(m.s, "bob", "user");
    m.tok[C_WORKER] = ts_token(m.s, "wrk", "worker");
    m.tok[C_ADMIN] = m.s->admin;
    m.tok[C_NONE] = NULL;
    m.tok[C_REVOKED] = ts_token_id(m.s, "alice", "user", rid);
    m.tok[C_MALFORMED] = "jq_' OR 1=1 --";
    struct resp r;
    char path[512];
    snprintf(path, sizeof path, "/v1/tokens/%s", rid);
    REQUIRE_EQ(ts_req(m.s, "DELETE", path, m.s->admin, NULL, &r), 204);
    resp_free(&r);

    struct resp routes;
    REQUIRE_EQ(ts_req(m.s, "GET", "/v1/admin/routes", m.s->admin, NULL, &routes), 200);
    json_t *arr = jpath(routes.json, "routes");
    size_t nr = json_array_size(arr);
    CHECK(nr >= 30);
    int cells = 0, bad = 0, identical = 0, seen[NROWS] = { 0 };
    for (size_t i = 0; i < nr; i++) {
        json_t *rt = json_array_get(arr, i);
        const char *method = jstr(rt, "method"), *pattern = jstr(rt, "path");
        const struct row *w = find_row(method, pattern);
        if (!w) {
            th_fail(__FILE__, __LINE__, "route %s %s has no row in the tenant matrix", method,
                    pattern);
            continue;
        }
        seen[w - EXPECT]++;
        /* the roles the server publishes must agree with the admin/worker/user columns */
        json_t *roles = jpath(rt, "roles");
        bool has_user = false, has_worker = false, has_admin = false;
        for (size_t k = 0; k < json_array_size(roles); k++) {
            const char *rn = json_string_value(json_array_get(roles, k));
            has_user |= rn && !strcmp(rn, "user");
            has_worker |= rn && !strcmp(rn, "worker");
            has_admin |= rn && !strcmp(rn, "admin");
        }
        if (json_array_size(roles)) {
            CHECK_EQ(has_user, w->st[C_OWNER] != 403);
            CHECK_EQ(has_worker, w->st[C_WORKER] != 403);
            CHECK_EQ(has_admin, w->st[C_ADMIN] != 403);
        }
        for (int c = 0; c < NCALLER; c++) {
            struct fx x;
            char body[512];
            make_fixture(&m, w->fix, &x);
            fill_path(w, x.val, path, sizeof path);
            if (w->body) expand(w->body, &x, m.seq, body, sizeof body);
            long st = call(&m, w, (enum caller)c, path, w->body ? body : NULL, &r);
            cells++;
            if (st != expected(w, (enum caller)c)) {
                bad++;
                th_fail(__FILE__, __LINE__, "%s %s as %s -> %ld, want %ld: %.200s", w->method,
                        path, CALLER[c], st, expected(w, (enum caller)c), r.body ? r.body : "");
            }
            if (st >= 400 && st != 0 && strcmp(w->pattern, "/v1/events") &&
                strncmp(r.content_type, "application/json", 16))
                th_fail(__FILE__, __LINE__, "%s %s as %s: error without a JSON body (%s)",
                        w->method, path, CALLER[c], r.content_type);
            /* other tenant: indistinguishable from a missing object */
            bool owned = w->fix == F_JOB || w->fix == F_JOB_PROC || w->fix == F_JOB_DONE ||
                         w->fix == F_SCHED || w->fix == F_WF;
            if (c == C_OTHER && owned && st == 404) {
                struct resp miss;
                char mid[TS_ID_MAX], mpath[512];
                missing_id(x.val, mid, sizeof mid);
                fill_path(w, mid, mpath, sizeof mpath);
                call(&m, w, C_OTHER, mpath, w->body ? body : NULL, &miss);
                bool same = CHECK_EQ(miss.status, st) & CHECK_STR_EQ(miss.body, r.body) &
                            CHECK_STR_EQ(miss.content_type, r.content_type) &
                            CHECK_EQ(miss.statements, r.statements);
                if (!same)
                    fprintf(stderr, "  ^ %s %s: other tenant vs missing differ\n", w->method, path);
                identical += same;
                resp_free(&miss);
            }
            resp_free(&r);
        }
    }
    for (int i = 0; i < NROWS; i++)
        if (!seen[i])
            th_fail(__FILE__, __LINE__, "matrix row %s %s: no such route on the server (stale row)",
                    EXPECT[i].method, EXPECT[i].pattern);
    printf("  t15: %zu routes x %d callers = %d cells, %d wrong; %d other-tenant replies "
           "byte-identical to missing ones\n", nr, NCALLER, cells, bad, identical);
    resp_free(&routes);
    testsrv_stop(m.s);
}

/* ------------------------------------------------------------------ T17 */

/* Reads a whole file (NULL if absent); *n its size. */
static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    *n = fread(b, 1, (size_t)sz, f);
    fclose(f);
    return b;
}

/* Hits of token text (whole, or any 12-char window of its secret) in buf. */
static int token_hits(const char *buf, size_t n, const char *tok)
{
    int hits = 0;
    size_t tl = strlen(tok);
    if (memmem(buf, n, tok, tl)) hits++;
    const char *sec = strncmp(tok, "jq_", 3) ? tok : tok + 3;
    size_t sl = strlen(sec);
    for (size_t i = 0; i + 12 <= sl; i++)
        if (memmem(buf, n, sec + i, 12)) { hits++; break; }
    return hits;
}

TEST(t17_token_text_never_stored_and_revocation_is_immediate)
{
    struct st_ctx c = st_setup();
    const char *toks[8];
    char ids[8][TS_ID_MAX];
    static const char *const roles[] = { "user", "worker", "admin", "user" };
    int nt = 0;
    for (int i = 0; i < 4; i++) {
        char u[16];
        snprintf(u, sizeof u, "tok%d", i);
        toks[nt] = ts_token_id(c.s, u, roles[i], ids[nt]);
        nt++;
    }
    toks[nt++] = c.alice;
    toks[nt++] = c.worker;
    toks[nt++] = c.s->admin;
    struct resp r;
    char id[TS_ID_MAX];
    for (int i = 0; i < nt; i++) {                 /* use each one: it is in the token cache */
        CHECK_EQ(ts_req(c.s, "GET", "/v1/stats", toks[i], NULL, &r), 200);
        resp_free(&r);
    }
    st_enq(c.s, toks[0], id, "{\"type\":\"t\"}");
    /* revoked: refused on the very next request (the cache is cleared on revoke) */
    char path[128];
    snprintf(path, sizeof path, "/v1/tokens/%s", ids[0]);
    CHECK_EQ(ts_req(c.s, "DELETE", path, c.s->admin, NULL, &r), 204);
    resp_free(&r);
    CHECK_EQ(ts_req(c.s, "GET", "/v1/stats", toks[0], NULL, &r), 401);
    CHECK_STR_EQ(st_code(&r), "unauthorized");
    resp_free(&r);
    CHECK_EQ(ts_get(c.s, toks[0], id, &r), 401);
    resp_free(&r);
    CHECK_EQ(ts_req(c.s, "DELETE", path, c.s->admin, NULL, &r), 404);   /* twice: not found */
    resp_free(&r);
    /* a token of a revoked user id does not revoke the others */
    CHECK_EQ(ts_req(c.s, "GET", "/v1/stats", toks[3], NULL, &r), 200);
    resp_free(&r);

    /* at rest: the DB, its WAL (as written, then after a clean stop) and the log */
    const char *suffix[] = { "", "-wal", NULL };
    char logp[1024];
    snprintf(logp, sizeof logp, "%s/jobqd.log", c.s->dir);
    int hits = 0, files = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) testsrv_restart(c.s);      /* checkpointed into the main file */
        for (int k = 0; k <= 2; k++) {
            char p[1024];
            if (k < 2) snprintf(p, sizeof p, "%s%s", c.s->db, suffix[k]);
            else snprintf(p, sizeof p, "%s", logp);
            size_t n = 0;
            char *b = slurp(p, &n);
            if (!b) continue;
            files++;
            for (int i = 0; i < nt; i++) {
                int h = token_hits(b, n, toks[i]);
                if (h) fprintf(stderr, "  token %d text found in %s\n", i, p);
                hits += h;
            }
            free(b);
        }
    }
    printf("  t17: %d tokens, %d files scanned, %d hits\n", nt, files, hits);
    CHECK(files >= 3);
    CHECK_EQ(hits, 0);
    testsrv_stop(c.s);
}

/* ------------------------------------------------------------------ T17, noisy neighbour */

enum { NOISY_LIMIT = 10, NOISY_RATE = 10 * NOISY_LIMIT, CALM_N = 400, CALM_RATE = 100 };

struct noisy {
    struct testsrv *s;
    const char *tok;
    int idx;
    atomic_bool *stop;
    long sent, refused, bad;          /* bad: a refusal that was not 429 + Retry-After */
};

static void *noisy_run(void *arg)
{
    struct noisy *n = arg;
    struct tsconn *c = tsconn_new(n->s);
    int64_t t0 = th_now_ms();
    for (long k = 0; !atomic_load(n->stop); k++) {
        rel_pace_until(t0 + k * 1000 * 2 / NOISY_RATE);          /* two threads share the rate */
        char body[128];
        snprintf(body, sizeof body, "{\"type\":\"noise\",\"params\":{\"t\":%d,\"k\":%ld}}",
                 n->idx, k);
        struct resp r;
        long st = tsconn_req(c, "POST", "/v1/jobs", n->tok, body, &r);
        n->sent++;
        if (st == 429) {
            n->refused++;
            n->bad += !r.retry_after[0];
        } else if (st != 201) {
            n->bad++;
        }
        resp_free(&r);
    }
    tsconn_free(c);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* p99 of CALM_N creates by tok at CALM_RATE/s, in microseconds. */
static int64_t calm_p99_us(struct testsrv *s, const char *tok, int round)
{
    struct tsconn *c = tsconn_new(s);
    int64_t lat[CALM_N], t0 = th_now_ms();
    for (int i = 0; i < CALM_N; i++) {
        rel_pace_until(t0 + (int64_t)i * 1000 / CALM_RATE);
        char body[128];
        snprintf(body, sizeof body, "{\"type\":\"calm\",\"params\":{\"r\":%d,\"i\":%d}}",
                 round, i);
        struct resp r;
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        long st = tsconn_req(c, "POST", "/v1/jobs", tok, body, &r);
        clock_gettime(CLOCK_MONOTONIC, &b);
        CHECK_EQ(st, 201);
        resp_free(&r);
        lat[i] = (b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
    }
    tsconn_free(c);
    qsort(lat, CALM_N, sizeof lat[0], cmp_i64);
    return lat[CALM_N * 99 / 100];
}

TEST(t17_tenant_at_10x_its_limit_does_not_slow_another)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *a = ts_token_limit(s, "noisy", "user", NOISY_LIMIT);
    const char *b = ts_token_limit(s, "calm", "user", 0);
    char id[TS_ID_MAX], body[64];
    for (int i = 0; i < NOISY_LIMIT; i++) {        /* A at its limit: the rest is refused */
        snprintf(body, sizeof body, "{\"type\":\"fill\",\"params\":{\"i\":%d}}", i);
        REQUIRE_EQ(ts_enqueue(s, a, body, id), 201);
    }
    int64_t alone = calm_p99_us(s, b, 0);
    atomic_bool stop = false;
    struct noisy nz[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        nz[i] = (struct noisy){ .s = s, .tok = a, .idx = i, .stop = &stop };
        REQUIRE_EQ(pthread_create(&th[i], NULL, noisy_run, &nz[i]), 0);
    }
    int64_t with = calm_p99_us(s, b, 1);
    atomic_store(&stop, true);
    long sent = 0, refused = 0, bad = 0;
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        sent += nz[i].sent;
        refused += nz[i].refused;
        bad += nz[i].bad;
    }
    printf("  t17 noisy: tenant A sent %ld creates at %d/s (limit %d): %ld refused 429, %ld "
           "otherwise; tenant B p99 %.2f ms alone, %.2f ms beside A (%.2fx)\n", sent,
           NOISY_RATE, NOISY_LIMIT, refused, bad, (double)alone / 1000, (double)with / 1000,
           (double)with / (double)(alone ? alone : 1));
    CHECK(refused >= sent * 9 / 10);
    CHECK_EQ(bad, 0);
    CHECK(with <= 2 * alone + 1000);
    testsrv_stop(s);
}

TEST_MAIN()
