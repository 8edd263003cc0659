/*
 * test_statements.c - X-Jobq-Statements: every response carries it, and the work a
 * request does does not grow with the data (listing 1 job and 500 jobs runs the same
 * number of SQL statements: no N+1 queries).
 */
#include "srvtest.h"

/* Statements of GET path as token (CHECKs 200 and that the header is there). */
static long stmts(struct testsrv *s, const char *token, const char *path, int64_t *total)
{
    struct resp r;
    CHECK_EQ(ts_req(s, "GET", path, token, NULL, &r), 200);
    CHECK(r.statements >= 1);
    if (total) *total = jint(r.json, "total_count");
    long n = r.statements;
    resp_free(&r);
    return n;
}

TEST(list_1_vs_500_same_statements)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *one = ts_token(s, "one", "user"), *many = ts_token(s, "many", "user");
    char id[TS_ID_MAX];
    st_enq(s, one, id, "{\"type\":\"t\",\"params\":{\"i\":0}}");
    for (int i = 0; i < 500; i++)
        st_enq(s, many, id, "{\"type\":\"t\",\"params\":{\"i\":1},\"priority\":3}");
    int64_t t1, t500;
    long s1 = stmts(s, one, "/v1/jobs?limit=1000", &t1);
    long s500 = stmts(s, many, "/v1/jobs?limit=1000", &t500);
    CHECK_EQ(t1, 1);
    CHECK_EQ(t500, 500);
    CHECK_EQ(s1, s500);
    CHECK_EQ(stmts(s, one, "/v1/jobs?status=pending&order=asc", NULL),
             stmts(s, many, "/v1/jobs?status=pending&order=asc", NULL));
    CHECK_EQ(stmts(s, s->admin, "/v1/jobs?limit=1", NULL),
             stmts(s, s->admin, "/v1/jobs?limit=1000", NULL));
    CHECK_EQ(stmts(s, one, "/v1/jobs?type=t&limit=5&offset=0", NULL),
             stmts(s, many, "/v1/jobs?type=t&limit=5&offset=100", NULL));
    testsrv_stop(s);
}

TEST(claim_statements_do_not_grow_with_queue)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX];
    struct resp r;
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"small\"}");
    for (int i = 0; i < 200; i++) st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"big\"}");
    CHECK_EQ(ts_claim(c.s, c.worker, "small", NULL, &r), 200);
    long small = r.statements;
    resp_free(&r);
    CHECK_EQ(ts_claim(c.s, c.worker, "big", NULL, &r), 200);
    CHECK_EQ(json_array_size(jpath(r.json, "jobs")), 1);
    CHECK_EQ(r.statements, small);
    resp_free(&r);
    testsrv_stop(c.s);
}

/* Every kind of response carries the header, errors included. */
TEST(header_on_every_response)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX];
    st_enq(c.s, c.alice, id, "{\"type\":\"t\"}");
    struct { const char *m, *path, *tok, *body; long want; } k[] = {
        { "GET", "/healthz", NULL, NULL, 200 },
        { "GET", "/v1/jobs", NULL, NULL, 401 },
        { "GET", "/v1/jobs/01JD7Q4K3M8ZC2W5T9XAV6B1NE", c.alice, NULL, 404 },
        { "GET", "/v1/nope", c.alice, NULL, 404 },
        { "POST", "/v1/jobs", c.alice, "{", 400 },
        { "POST", "/v1/queues/q/claim", c.alice, "{\"worker_id\":\"w\"}", 403 },
        { "PUT", "/v1/jobs", c.alice, NULL, 405 },
        { "DELETE", "/v1/jobs/%s", c.alice, NULL, 409 },
        { "GET", "/v1/jobs/%s", c.alice, NULL, 200 },
        { "POST", "/v1/jobs/%s/cancel", c.alice, NULL, 200 },
        { "DELETE", "/v1/jobs/%s", c.alice, NULL, 204 },
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        struct resp r;
        char path[128];
        snprintf(path, sizeof path, k[i].path, id);
        ts_req(c.s, k[i].m, path, k[i].tok, k[i].body, &r);
        bool ok = CHECK_EQ(r.status, k[i].want);
        ok &= CHECK(r.statements >= 0);
        if (!ok)
            fprintf(stderr, "  %s %s -> %ld stmts=%ld %s\n", k[i].m, path, r.status,
                    r.statements, r.body);
        resp_free(&r);
    }
    testsrv_stop(c.s);
}

TEST_MAIN()
