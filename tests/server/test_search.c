/* test_search.c - JSON containment on params/result, full-text log search
 * and GET /v1/jobs?log_q= against the real server: semantics, tenancy,
 * malformed queries, and statement counts that do not grow with the hits. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "srvtest.h"

/* GET path?name=<urlencoded value>[&extra] as token. */
static long get_q(struct testsrv *s, const char *token, const char *path, const char *name,
                  const char *value, const char *extra, struct resp *r)
{
    char *enc = curl_easy_escape(NULL, value, 0);
    long st = ts_reqf(s, "GET", token, NULL, r, "%s?%s=%s%s%s", path, name, enc,
                      extra ? "&" : "", extra ? extra : "");
    curl_free(enc);
    return st;
}

static size_t found(struct resp *r, const char *list)
{
    return json_array_size(jpath(r->json, list));
}

TEST(params_containment_semantics)
{
    struct st_ctx c = st_setup();
    char a[TS_ID_MAX], b[TS_ID_MAX], x[TS_ID_MAX];
    st_enq(c.s, c.alice, a, "{\"type\":\"r\",\"params\":{\"customer\":\"acme\",\"tags\":[\"x\","
                            "\"y\"],\"n\":{\"k\":1,\"deep\":{\"z\":true}}}}");
    st_enq(c.s, c.alice, b, "{\"type\":\"r\",\"params\":{\"customer\":\"globex\",\"tags\":[\"y\"]}}");
    st_enq(c.s, c.bob, x, "{\"type\":\"r\",\"params\":{\"customer\":\"acme\"}}");   /* canary */
    struct { const char *q; int n; } cases[] = {
        {"{\"customer\":\"acme\"}", 1}, {"{\"tags\":[\"y\"]}", 2}, {"{\"tags\":[\"x\",\"y\"]}", 1},
        {"{\"tags\":[\"z\"]}", 0}, {"{\"n\":{\"k\":1.0}}", 1}, {"{\"n\":{\"deep\":{\"z\":true}}}", 1},
        {"{\"n\":{\"k\":\"1\"}}", 0}, {"{\"customer\":\"acme\",\"tags\":[\"y\"]}", 1},
        {"{\"customer\":\"acme\",\"tags\":[\"q\"]}", 0}, {"{\"tags\":\"y\"}", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct resp r;
        CHECK_EQ(get_q(c.s, c.alice, "/v1/jobs", "params", cases[i].q, NULL, &r), 200);
        if (!CHECK_EQ(found(&r, "jobs"), cases[i].n))
            fprintf(stderr, "  params=%s -> %s\n", cases[i].q, r.body);
        CHECK_EQ(jint(r.json, "total_count"), cases[i].n);
        CHECK(strstr(r.body, x) == NULL);                  /* never bob's job */
        resp_free(&r);
    }
    struct resp r;                                         /* combined with a status filter */
    CHECK_EQ(get_q(c.s, c.alice, "/v1/jobs", "params", "{\"tags\":[\"y\"]}", "status=completed",
                   &r), 200);
    CHECK_EQ(found(&r, "jobs"), 0);
    resp_free(&r);
    const char *bad[] = {"{}", "[1]", "\"x\"", "{\"a\":", "{\"a\":{}}", NULL};
    for (int i = 0; bad[i]; i++) {
        CHECK_EQ(get_q(c.s, c.alice, "/v1/jobs", "params", bad[i], NULL, &r), 400);
        CHECK_STR_EQ(jstr(r.json, "error.field"), "params");
        resp_free(&r);
    }
    testsrv_stop(c.s);
}

/* Issue 5: on SQLite the terms of new jobs are indexed in batches (64 or more at a
 * time); the jobs indexed and the newest ones not indexed yet are found alike. */
TEST(containment_finds_batch_indexed_and_newest_jobs)
{
    struct st_ctx c = st_setup();
    size_t cap = 64 * 1024;
    char *body = malloc(cap);
    REQUIRE(body != NULL);
    int n = snprintf(body, cap, "{\"jobs\":[");
    for (int i = 0; i < 700; i++)
        n += snprintf(body + n, cap - (size_t)n, "%s{\"type\":\"t\",\"params\":{\"n\":%d}}",
                      i ? "," : "", i);
    snprintf(body + n, cap - (size_t)n, "]}");
    struct resp r;
    REQUIRE_EQ(ts_req(c.s, "POST", "/v1/jobs/batch", c.alice, body, &r), 201);
    resp_free(&r);
    free(body);
    char last[TS_ID_MAX];
    st_enq(c.s, c.alice, last, "{\"type\":\"t\",\"params\":{\"n\":100000}}");
    const char *qs[] = {"{\"n\":5}", "{\"n\":699}", "{\"n\":100000}"};
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(get_q(c.s, c.alice, "/v1/jobs", "params", qs[i], NULL, &r), 200);
        if (!CHECK_EQ(found(&r, "jobs"), 1))
            fprintf(stderr, "  params=%s -> %.300s\n", qs[i], r.body);
        CHECK_EQ(jint(r.json, "total_count"), 1);
        resp_free(&r);
    }
    CHECK_EQ(get_q(c.s, c.bob, "/v1/jobs", "params", "{\"n\":5}", NULL, &r), 200);
    CHECK_EQ(found(&r, "jobs"), 0);                        /* alice's jobs, not bob's */
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST(result_containment_and_cursor_paging)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX], body[256];
    for (int i = 0; i < 5; i++) {
        snprintf(body, sizeof body, "{\"type\":\"r\",\"queue\":\"rc\",\"params\":{\"i\":%d}}", i);
        st_enq(c.s, c.alice, id, body);
        char lease[TS_ID_MAX], got[TS_ID_MAX];
        REQUIRE(ts_claim1(c.s, c.worker, "rc", got, lease));
        snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":{\"ok\":%s,\"i\":%d}}",
                 lease, i % 2 ? "false" : "true", i);
        REQUIRE_EQ(st_post0(c.s, c.worker, got, "complete", body), 200);
    }
    struct resp r;
    CHECK_EQ(get_q(c.s, c.alice, "/v1/jobs", "result", "{\"ok\":true}", "limit=2", &r), 200);
    CHECK_EQ(found(&r, "jobs"), 2);
    CHECK_EQ(jint(r.json, "total_count"), 3);
    char cur[128];
    snprintf(cur, sizeof cur, "limit=2&cursor=%s", jstr(r.json, "next_cursor"));
    resp_free(&r);
    CHECK_EQ(get_q(c.s, c.alice, "/v1/jobs", "result", "{\"ok\":true}", cur, &r), 200);
    CHECK_EQ(found(&r, "jobs"), 1);                        /* the third, then the end */
    resp_free(&r);
    CHECK_EQ(get_q(c.s, c.bob, "/v1/jobs", "result", "{\"ok\":true}", NULL, &r), 200);
    CHECK_EQ(found(&r, "jobs"), 0);
    resp_free(&r);
    testsrv_stop(c.s);
}

/* Claims a job of queue for alice and adds log lines to it. */
static void job_with_logs(struct st_ctx *c, const char *queue, const char *const *lines,
                          char *id)
{
    char body[512], lease[TS_ID_MAX];
    snprintf(body, sizeof body, "{\"type\":\"lg\",\"queue\":\"%s\"}", queue);
    st_enq(c->s, c->alice, id, body);
    REQUIRE(ts_claim1(c->s, c->worker, queue, NULL, lease));
    for (int i = 0; lines[i]; i++) {
        snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"level\":\"%s\",\"message\":\"%s\"}",
                 lease, i % 2 ? "error" : "info", lines[i]);
        REQUIRE_EQ(st_post0(c->s, c->worker, id, "logs", body), 201);
    }
}

TEST(log_search_finds_ranks_and_never_leaks)
{
    struct st_ctx c = st_setup();
    const char *lines[] = {"connecting to the database", "database timeout after 30s",
                           "zebracanary secret of alice", NULL};
    char id[TS_ID_MAX];
    job_with_logs(&c, "lq", lines, id);
    struct resp r;
    CHECK_EQ(get_q(c.s, c.alice, "/v1/logs/search", "q", "database", NULL, &r), 200);
    CHECK_EQ(found(&r, "logs"), 2);
    CHECK(strstr(jstr(r.json, "logs.0.snippet"), "\x02" "database" "\x03") != NULL);
    CHECK_STR_EQ(jstr(r.json, "logs.0.job_id"), id);
    resp_free(&r);
    CHECK_EQ(get_q(c.s, c.alice, "/v1/logs/search", "q", "database", "level=error", &r), 200);
    CHECK_EQ(found(&r, "logs"), 1);
    resp_free(&r);
    CHECK_EQ(get_q(c.s, c.bob, "/v1/logs/search", "q", "zebracanary", NULL, &r), 200);
    CHECK_EQ(found(&r, "logs"), 0);                        /* never another user's logs */
    resp_free(&r);
    CHECK_EQ(get_q(c.s, c.bob, "/v1/logs/search", "q", "zebracanary OR u:616C696365", NULL, &r),
             200);
    CHECK_EQ(found(&r, "logs"), 0);                        /* not even by naming the column */
    resp_free(&r);
    CHECK_EQ(get_q(c.s, c.s->admin, "/v1/logs/search", "q", "zebracanary", NULL, &r), 200);
    CHECK_EQ(found(&r, "logs"), 1);                        /* admin sees all */
    resp_free(&r);
    CHECK_EQ(get_q(c.s, c.alice, "/v1/jobs", "log_q", "timeout", NULL, &r), 200);
    CHECK_EQ(found(&r, "jobs"), 1);
    resp_free(&r);
    CHECK_EQ(get_q(c.s, c.bob, "/v1/jobs", "log_q", "timeout", NULL, &r), 200);
    CHECK_EQ(found(&r, "jobs"), 0);
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST(malformed_log_queries_are_400_never_sql_errors)
{
    struct st_ctx c = st_setup();
    const char *bad[] = {"database AND (", "\"unterminated", "AND", "x) OR (y", "NEAR(", "*x",
                         "x:y:z", NULL};
    for (int i = 0; bad[i]; i++) {
        struct resp r;
        CHECK_EQ(get_q(c.s, c.alice, "/v1/logs/search", "q", bad[i], NULL, &r), 400);
        CHECK_STR_EQ(jstr(r.json, "error.field"), "q");
        if (th_failed())
            fprintf(stderr, "  q=%s -> %s\n", bad[i], r.body);
        resp_free(&r);
        CHECK_EQ(get_q(c.s, c.alice, "/v1/jobs", "log_q", bad[i], NULL, &r), 400);
        resp_free(&r);
    }
    struct resp r;
    CHECK_EQ(ts_req(c.s, "GET", "/v1/logs/search", c.alice, NULL, &r), 400);   /* q required */
    resp_free(&r);
    CHECK_EQ(get_q(c.s, c.alice, "/v1/logs/search", "q", "x", "cursor=AAAA", &r), 400);
    CHECK_STR_EQ(jstr(r.json, "error.field"), "cursor");
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST(search_statements_do_not_grow_with_hits)
{
    struct st_ctx c = st_setup();
    const char *one[] = {"alpha rare", NULL};
    const char *many[] = {"beta common", "beta common", "beta common", "beta common",
                          "beta common", "beta common", NULL};
    char id[TS_ID_MAX], body[128];
    job_with_logs(&c, "s1", one, id);
    job_with_logs(&c, "s2", many, id);
    struct resp r;
    CHECK_EQ(get_q(c.s, c.alice, "/v1/logs/search", "q", "rare", NULL, &r), 200);
    long st1 = r.statements;
    resp_free(&r);
    CHECK_EQ(get_q(c.s, c.alice, "/v1/logs/search", "q", "common", NULL, &r), 200);
    CHECK_EQ(found(&r, "logs"), 6);
    CHECK_EQ(r.statements, st1);
    resp_free(&r);
    for (int i = 0; i < 30; i++) {
        snprintf(body, sizeof body, "{\"type\":\"r\",\"params\":{\"k\":\"many\",\"i\":%d}}", i);
        st_enq(c.s, c.alice, id, body);
    }
    st_enq(c.s, c.alice, id, "{\"type\":\"r\",\"params\":{\"k\":\"one\"}}");
    CHECK_EQ(get_q(c.s, c.alice, "/v1/jobs", "params", "{\"k\":\"one\"}", NULL, &r), 200);
    long st2 = r.statements;
    resp_free(&r);
    CHECK_EQ(get_q(c.s, c.alice, "/v1/jobs", "params", "{\"k\":\"many\"}", NULL, &r), 200);
    CHECK_EQ(found(&r, "jobs"), 30);
    CHECK_EQ(r.statements, st2);
    resp_free(&r);
    testsrv_stop(c.s);
}

/* Over 1,000 candidates the search walks the listing order instead of sorting
 * every candidate: same answers, same statement count. */
TEST(unselective_containment_walks_the_listing)
{
    struct st_ctx c = st_setup();
    const char *u = ts_token_limit(c.s, "many", "user", 0);
    enum { N = 1100 };
    char *batch = malloc(80 * 1000);
    REQUIRE(batch != NULL);
    for (int b = 0; b < 2; b++) {
        int len = snprintf(batch, 80 * 1000, "{\"jobs\":[");
        for (int i = 0; i < (b ? N - 1000 : 1000); i++)
            len += snprintf(batch + len, 80 * 1000 - (size_t)len, "%s{\"type\":\"w\","
                            "\"params\":{\"region\":\"eu\",\"i\":%d}}", i ? "," : "",
                            b * 1000 + i);
        snprintf(batch + len, 80 * 1000 - (size_t)len, "]}");
        struct resp r;
        REQUIRE_EQ(ts_req(c.s, "POST", "/v1/jobs/batch", u, batch, &r), 201);
        resp_free(&r);
    }
    free(batch);
    char one[TS_ID_MAX];
    st_enq(c.s, u, one, "{\"type\":\"w\",\"params\":{\"region\":\"us\",\"i\":-1}}");
    struct resp r;
    CHECK_EQ(get_q(c.s, u, "/v1/jobs", "params", "{\"region\":\"eu\"}", "limit=10", &r), 200);
    CHECK_EQ(found(&r, "jobs"), 10);
    CHECK_EQ(jint(r.json, "total_count"), N);
    CHECK_EQ(jint(r.json, "jobs.0.params.i"), N - 1);               /* newest first */
    CHECK(jpath(r.json, "total_count_capped") == NULL);             /* under the cap: exact */
    long walk = r.statements;
    resp_free(&r);
    CHECK_EQ(get_q(c.s, u, "/v1/jobs", "params", "{\"region\":\"us\"}", "limit=10", &r), 200);
    CHECK_EQ(found(&r, "jobs"), 1);
    CHECK_EQ(r.statements, walk);                                   /* probe, page, count */
    resp_free(&r);
    CHECK_EQ(get_q(c.s, c.bob, "/v1/jobs", "params", "{\"region\":\"eu\"}", NULL, &r), 200);
    CHECK_EQ(found(&r, "jobs"), 0);                                 /* never another user's */
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST_MAIN()
