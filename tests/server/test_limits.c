/*
 * test_limits.c - the per-user active limit (docs/API.md, issue 4): at most N pending +
 * processing jobs per user (--active-limit, default 10; a token's own active_limit,
 * 0 = unlimited; admin unlimited) → 429 rate_limited with Retry-After: 5. Dedup and cache
 * answer before the limit; bulk counts the jobs it would add; 40 concurrent creates
 * against a limit of 10 accept exactly 10.
 */
#include "srvtest.h"

/* Creates {"type":"t","params":{"n":n}} (+extra members) as token; returns status. */
static long create_n(struct testsrv *s, const char *token, int n, const char *extra,
                     struct resp *out)
{
    char body[256];
    snprintf(body, sizeof body, "{\"type\":\"t\",\"queue\":\"lq\",\"params\":{\"n\":%d}%s}", n,
             extra ? extra : "");
    return st_create(s, token, body, out);
}

/* CHECKs a 429 reply: code, Retry-After. */
static void check_429(struct resp *r)
{
    bool ok = CHECK_EQ(r->status, 429);
    ok &= CHECK_STR_EQ(st_code(r), "rate_limited");
    ok &= CHECK_STR_EQ(r->retry_after, "5");
    if (!ok) fprintf(stderr, "  -> %ld [Retry-After %s] %s\n", r->status, r->retry_after, r->body);
}

/* The harness starts jobqd with --active-limit 0, so the documented default (10) is given. */
TEST(limit_of_10_counts_pending_plus_processing)
{
    static const char *const ten[] = { "--active-limit", "10", NULL };
    struct st_ctx c;
    c.s = st_start_with(ten);
    c.alice = ts_token(c.s, "alice", "user");
    c.bob = ts_token(c.s, "bob", "user");
    c.worker = ts_token(c.s, "worker-1", "worker");
    struct resp r;
    for (int i = 0; i < 10; i++) {
        if (!CHECK_EQ(create_n(c.s, c.alice, i, NULL, &r), 201)) fprintf(stderr, "  %s\n", r.body);
        resp_free(&r);
    }
    create_n(c.s, c.alice, 10, NULL, &r);
    check_429(&r);
    resp_free(&r);
    CHECK_EQ(st_total(c.s, c.alice, ""), 10);
    /* another user is not affected */
    CHECK_EQ(create_n(c.s, c.bob, 0, NULL, &r), 201);
    resp_free(&r);
    /* processing still counts */
    char id[TS_ID_MAX], lease[TS_ID_MAX], body[256];
    REQUIRE(ts_claim1(c.s, c.worker, "lq", id, lease));
    create_n(c.s, c.alice, 10, NULL, &r);
    check_429(&r);
    resp_free(&r);
    /* completing frees a slot */
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\"}", lease);
    REQUIRE_EQ(st_post0(c.s, c.worker, id, "complete", body), 200);
    CHECK_EQ(create_n(c.s, c.alice, 10, NULL, &r), 201);
    resp_free(&r);
    create_n(c.s, c.alice, 11, NULL, &r);
    check_429(&r);
    resp_free(&r);
    /* cancelling frees a slot */
    CHECK_EQ(ts_reqf(c.s, "GET", c.alice, NULL, &r, "/v1/jobs?status=pending&limit=1"), 200);
    REQUIRE(jstr(r.json, "jobs.0.id"));
    snprintf(id, sizeof id, "%s", jstr(r.json, "jobs.0.id"));
    resp_free(&r);
    REQUIRE_EQ(st_post0(c.s, c.alice, id, "cancel", NULL), 200);
    CHECK_EQ(create_n(c.s, c.alice, 11, NULL, &r), 201);
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST(flag_token_and_admin_limits)
{
    const char *extra[] = { "--active-limit", "3", NULL };
    struct testsrv *s = st_start_with(extra);
    const char *dflt = ts_token(s, "dflt", "user");
    const char *two = ts_token_limit(s, "two", "user", 2);
    const char *many = ts_token_limit(s, "many", "user", 0);
    struct resp r;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(create_n(s, dflt, i, NULL, &r), 201);
        resp_free(&r);
    }
    create_n(s, dflt, 3, NULL, &r);
    check_429(&r);
    resp_free(&r);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(create_n(s, two, i, NULL, &r), 201);
        resp_free(&r);
    }
    create_n(s, two, 2, NULL, &r);
    check_429(&r);
    resp_free(&r);
    for (int i = 0; i < 25; i++) {
        if (!CHECK_EQ(create_n(s, many, i, NULL, &r), 201)) fprintf(stderr, "  %s\n", r.body);
        resp_free(&r);
    }
    for (int i = 0; i < 12; i++) {
        if (!CHECK_EQ(create_n(s, s->admin, i, NULL, &r), 201)) fprintf(stderr, "  %s\n", r.body);
        resp_free(&r);
    }
    testsrv_stop(s);
}

TEST(token_active_limit_is_validated)
{
    struct testsrv *s = testsrv_start(NULL);
    struct resp r;
    const char *bad[] = { "-1", "\"5\"", "1.5", "true", NULL };
    for (int i = 0; bad[i]; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"user_id\":\"x\",\"role\":\"user\",\"active_limit\":%s}",
                 bad[i]);
        bool ok = CHECK_EQ(ts_req(s, "POST", "/v1/tokens", s->admin, body, &r), 400);
        ok &= CHECK_STR_EQ(jstr(r.json, "error.field"), "active_limit");
        if (!ok) fprintf(stderr, "  %s -> %ld %s\n", body, r.status, r.body);
        resp_free(&r);
    }
    testsrv_stop(s);
}

TEST(dedup_and_cache_answer_before_the_limit)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *u = ts_token_limit(s, "u", "user", 2);
    const char *w = ts_token(s, "w", "worker");
    struct resp r;
    char done[TS_ID_MAX], a[TS_ID_MAX];
    REQUIRE_EQ(create_n(s, u, 100, NULL, &r), 201);
    resp_free(&r);
    st_claim_complete(s, w, "lq", "{\"v\":100}", done);
    REQUIRE_EQ(create_n(s, u, 1, NULL, &r), 201);
    snprintf(a, sizeof a, "%s", jstr(r.json, "id"));
    resp_free(&r);
    REQUIRE_EQ(create_n(s, u, 2, NULL, &r), 201);
    resp_free(&r);
    create_n(s, u, 3, NULL, &r);                     /* at the limit */
    check_429(&r);
    resp_free(&r);
    CHECK_EQ(create_n(s, u, 1, NULL, &r), 200);      /* identical to a pending job */
    CHECK_EQ(jbool(r.json, "deduplicated"), 1);
    CHECK_STR_EQ(jstr(r.json, "id"), a);
    resp_free(&r);
    CHECK_EQ(create_n(s, u, 100, NULL, &r), 200);    /* identical to a completed job */
    CHECK_EQ(jbool(r.json, "cached"), 1);
    CHECK_STR_EQ(jstr(r.json, "id"), done);
    resp_free(&r);
    create_n(s, u, 1, ",\"dedup\":false", &r);        /* a real insert: limited */
    check_429(&r);
    resp_free(&r);
    CHECK_EQ(st_total(s, u, ""), 3);
    testsrv_stop(s);
}

TEST(batch_counts_the_jobs_it_would_add)
{
    const char *extra[] = { "--active-limit", "5", NULL };
    struct testsrv *s = st_start_with(extra);
    const char *u = ts_token(s, "u", "user");
    struct resp r;
    for (int i = 0; i < 3; i++) {
        REQUIRE_EQ(create_n(s, u, i, NULL, &r), 201);
        resp_free(&r);
    }
    const char *three = "{\"jobs\":[{\"type\":\"b\"},{\"type\":\"b\"},{\"type\":\"b\"}]}";
    ts_req(s, "POST", "/v1/jobs/batch", u, three, &r);
    check_429(&r);
    resp_free(&r);
    CHECK_EQ(st_total(s, u, ""), 3);                  /* nothing created */
    CHECK_EQ(ts_req(s, "POST", "/v1/jobs/batch", u, "{\"jobs\":[{\"type\":\"b\"},{\"type\":\"b\"}]}",
                    &r), 201);
    CHECK_EQ(jint(r.json, "created"), 2);
    resp_free(&r);
    CHECK_EQ(st_total(s, u, ""), 5);
    testsrv_stop(s);
}

TEST(forty_concurrent_creates_with_limit_10_accept_10)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *u = ts_token_limit(s, "burst", "user", 10);
    enum { N = 40 };
    const char *toks[N], *bodies[N];
    char bufs[N][96];
    struct resp out[N];
    for (int i = 0; i < N; i++) {
        snprintf(bufs[i], sizeof bufs[i], "{\"type\":\"burst\",\"params\":{\"i\":%d}}", i);
        toks[i] = u;
        bodies[i] = bufs[i];
    }
    st_parallel_post(s, N, "/v1/jobs", toks, bodies, out);
    int created = 0, limited = 0;
    for (int i = 0; i < N; i++) {
        if (out[i].status == 201) {
            created++;
        } else if (out[i].status == 429 && !strcmp(st_code(&out[i]), "rate_limited") &&
                   !strcmp(out[i].retry_after, "5")) {
            limited++;
        } else {
            fprintf(stderr, "  [%d] -> %ld [Retry-After %s] %s\n", i, out[i].status,
                    out[i].retry_after, out[i].body);
        }
        resp_free(&out[i]);
    }
    CHECK_EQ(created, 10);
    CHECK_EQ(limited, 30);
    CHECK_EQ(st_total(s, u, ""), 10);
    CHECK_EQ(st_total(s, u, "status=pending"), 10);
    testsrv_stop(s);
}

TEST_MAIN()
