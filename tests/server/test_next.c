/* test_next.c - POST /v1/queues/{queue}/next: complete, fail and claim in one
 * store operation (one commit), with per-item errors and a long-poll tail. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "srvtest.h"

/* POSTs body to /next of queue as token; REQUIREs 200. */
static void next(struct testsrv *s, const char *token, const char *queue, const char *body,
                 struct resp *r)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/queues/%s/next", queue);
    REQUIRE_EQ(ts_req(s, "POST", path, token, body, r), 200);
}

TEST(next_finishes_and_claims_in_one_commit)
{
    struct st_ctx c = st_setup();
    char a[TS_ID_MAX], b[TS_ID_MAX], d[TS_ID_MAX], body[1024];
    st_enq(c.s, c.alice, a, "{\"type\":\"t\",\"queue\":\"nx\",\"params\":{\"n\":1}}");
    st_enq(c.s, c.alice, b, "{\"type\":\"t\",\"queue\":\"nx\",\"params\":{\"n\":2}}");
    st_enq(c.s, c.alice, d, "{\"type\":\"t\",\"queue\":\"nx\",\"params\":{\"n\":3}}");
    struct resp r;
    next(c.s, c.worker, "nx", "{\"worker_id\":\"w\",\"max\":2}", &r);
    REQUIRE_EQ(json_array_size(jpath(r.json, "jobs")), 2);
    CHECK_STR_EQ(jstr(r.json, "jobs.0.id"), a);                 /* pickup order */
    char la[64], lb[64];
    snprintf(la, sizeof la, "%s", jstr(r.json, "jobs.0.lease_token"));
    snprintf(lb, sizeof lb, "%s", jstr(r.json, "jobs.1.lease_token"));
    resp_free(&r);
    int64_t ops0, commits0, ops1, commits1;
    REQUIRE_EQ(ts_store_counters(c.s, &ops0, &commits0), 0);
    snprintf(body, sizeof body,
             "{\"worker_id\":\"w\",\"max\":5,"
             "\"complete\":[{\"id\":\"%s\",\"lease_token\":\"%s\",\"result\":{\"ok\":true}},"
             "{\"id\":\"%s\",\"lease_token\":\"stale\"}],"
             "\"fail\":[{\"id\":\"%s\",\"lease_token\":\"%s\",\"error_message\":\"boom\","
             "\"retryable\":false}]}", a, la, d, b, lb);
    next(c.s, c.worker, "nx", body, &r);
    CHECK_EQ(jint(r.json, "completed"), 1);
    CHECK_EQ(jint(r.json, "failed"), 1);
    CHECK_EQ(json_array_size(jpath(r.json, "errors")), 1);
    CHECK_STR_EQ(jstr(r.json, "errors.0.code"), "lease_lost");
    CHECK_EQ(jint(r.json, "errors.0.index"), 1);
    CHECK_STR_EQ(jstr(r.json, "jobs.0.id"), d);                 /* then claimed the third */
    resp_free(&r);
    REQUIRE_EQ(ts_store_counters(c.s, &ops1, &commits1), 0);
    CHECK_EQ(commits1 - commits0, 1);                           /* one commit for it all */
    CHECK_EQ(ops1 - ops0, 1);
    char st[32];
    st_field(c.s, c.alice, a, "status", st, sizeof st);
    CHECK_STR_EQ(st, "completed");
    st_field(c.s, c.alice, b, "status", st, sizeof st);
    CHECK_STR_EQ(st, "failed");
    testsrv_stop(c.s);
}

TEST(next_statements_do_not_grow_with_the_batch)
{
    struct st_ctx c = st_setup();
    char body[16384], id[TS_ID_MAX];
    for (int i = 0; i < 40; i++) {
        snprintf(body, sizeof body, "{\"type\":\"t\",\"queue\":\"ns\",\"params\":{\"n\":%d}}", i);
        st_enq(c.s, c.alice, id, body);
    }
    struct resp r;
    int stmts[2];
    for (int round = 0; round < 2; round++) {
        int n = round == 0 ? 1 : 30;
        snprintf(body, sizeof body, "{\"worker_id\":\"w\",\"max\":%d}", n);
        next(c.s, c.worker, "ns", body, &r);
        int len = snprintf(body, sizeof body, "{\"worker_id\":\"w\",\"max\":0,\"complete\":[");
        for (int i = 0; i < n; i++)
            len += snprintf(body + len, sizeof body - (size_t)len,
                            "%s{\"id\":\"%s\",\"lease_token\":\"%s\"}", i ? "," : "",
                            jstr(json_array_get(jpath(r.json, "jobs"), (size_t)i), "id"),
                            jstr(json_array_get(jpath(r.json, "jobs"), (size_t)i), "lease_token"));
        snprintf(body + len, sizeof body - (size_t)len, "]}");
        resp_free(&r);
        next(c.s, c.worker, "ns", body, &r);
        CHECK_EQ(jint(r.json, "completed"), n);
        stmts[round] = (int)r.statements;
        resp_free(&r);
    }
    CHECK_EQ(stmts[0], stmts[1]);
    testsrv_stop(c.s);
}

TEST(next_validates_items_and_roles)
{
    struct st_ctx c = st_setup();
    struct resp r;
    CHECK_EQ(ts_req(c.s, "POST", "/v1/queues/nv/next", c.worker,
                    "{\"worker_id\":\"w\",\"complete\":[{\"id\":\"01M8AFAQ5WBQ21SJHHSY2NCVRX\"}]}",
                    &r), 400);
    CHECK_STR_EQ(jstr(r.json, "error.field"), "complete[0].lease_token");
    resp_free(&r);
    CHECK_EQ(ts_req(c.s, "POST", "/v1/queues/nv/next", c.worker,
                    "{\"worker_id\":\"w\",\"fail\":[{\"id\":\"x\",\"lease_token\":\"l\","
                    "\"error_message\":\"m\"}]}", &r), 400);
    CHECK_STR_EQ(jstr(r.json, "error.field"), "fail[0].id");
    resp_free(&r);
    CHECK_EQ(ts_req(c.s, "POST", "/v1/queues/nv/next", c.worker,
                    "{\"worker_id\":\"w\",\"max\":101}", &r), 400);
    CHECK_STR_EQ(jstr(r.json, "error.field"), "max");
    resp_free(&r);
    CHECK_EQ(ts_req(c.s, "POST", "/v1/queues/nv/next", c.alice, "{\"worker_id\":\"w\"}", &r), 403);
    resp_free(&r);
    next(c.s, c.worker, "nv", "{\"worker_id\":\"w\",\"max\":3}", &r);   /* empty queue */
    CHECK_EQ(json_array_size(jpath(r.json, "jobs")), 0);
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST_MAIN()
