/*
 * test_dedup.c - create is find-or-create (docs/API.md, issue 4): a pending or processing
 * job of the same user, type and canonical params within the dedup window answers 200
 * with "deduplicated": true; unique_key matches regardless of params; dedup:false opts
 * out; 50 concurrent identical creates make exactly one job. Time moves only through
 * the fake clock.
 */
#include "srvtest.h"

/* Creates body as token; CHECKs status want and the two flags; copies the id. */
static void create_want(struct testsrv *s, const char *token, const char *body, long want,
                        int dedup, int cached, char *id)
{
    struct resp r;
    long st = st_create(s, token, body, &r);
    bool ok = CHECK_EQ(st, want);
    if (st == 200 || st == 201) {
        ok &= CHECK_EQ(jbool(r.json, "deduplicated"), dedup);
        ok &= CHECK_EQ(jbool(r.json, "cached"), cached);
    }
    if (!ok) fprintf(stderr, "  POST /v1/jobs %s -> %ld %s\n", body, st, r.body);
    if (id) snprintf(id, TS_ID_MAX, "%s", jstr(r.json, "id") ? jstr(r.json, "id") : "");
    resp_free(&r);
}

TEST(identical_create_returns_existing_job)
{
    struct st_ctx c = st_setup();
    char a[TS_ID_MAX], b[TS_ID_MAX];
    create_want(c.s, c.alice, "{\"type\":\"t\",\"params\":{\"a\":1,\"b\":2}}", 201, 0, 0, a);
    create_want(c.s, c.alice, "{\"type\":\"t\",\"params\":{\"a\":1,\"b\":2}}", 200, 1, 0, b);
    CHECK_STR_EQ(b, a);
    /* the reply of a dedup is the job itself */
    struct resp r;
    CHECK_EQ(st_create(c.s, c.alice, "{\"type\":\"t\",\"params\":{\"a\":1,\"b\":2}}", &r), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "pending");
    CHECK_STR_EQ(jstr(r.json, "type"), "t");
    CHECK_EQ(jint(r.json, "params.b"), 2);
    resp_free(&r);
    CHECK_EQ(st_total(c.s, c.alice, ""), 1);
    testsrv_stop(c.s);
}

TEST(canonical_params_match)
{
    struct st_ctx c = st_setup();
    char a[TS_ID_MAX], b[TS_ID_MAX];
    /* key order, 1 / 1.0 / 1e0, \u escapes, at every depth */
    create_want(c.s, c.alice, "{\"type\":\"t\",\"params\":{\"a\":1,\"b\":2}}", 201, 0, 0, a);
    create_want(c.s, c.alice, "{\"type\":\"t\",\"params\":{\"b\":2,\"a\":1.0}}", 200, 1, 0, b);
    CHECK_STR_EQ(b, a);
    create_want(c.s, c.alice, "{\"type\":\"t\",\"params\":{\"b\":2e0,\"a\":1e0}}", 200, 1, 0, b);
    CHECK_STR_EQ(b, a);
    create_want(c.s, c.alice,
                "{\"type\":\"n\",\"params\":{\"x\":{\"b\":[1,{\"d\":1,\"c\":\"\\u0061b\"}],\"a\":1e0},"
                "\"s\":\"caf\\u00e9\"}}", 201, 0, 0, a);
    create_want(c.s, c.alice,
                "{\"params\":{\"s\":\"caf\xc3\xa9\",\"x\":{\"a\":1,\"b\":[1.0,{\"c\":\"ab\",\"d\":10e-1}]}},"
                "\"type\":\"n\"}", 200, 1, 0, b);
    CHECK_STR_EQ(b, a);
    /* an absent params and {} are compared canonically too */
    create_want(c.s, c.alice, "{\"type\":\"e\",\"params\":{}}", 201, 0, 0, a);
    create_want(c.s, c.alice, "{\"type\":\"e\",\"params\":{ }}", 200, 1, 0, b);
    CHECK_STR_EQ(b, a);
    CHECK_EQ(st_total(c.s, c.alice, ""), 3);
    testsrv_stop(c.s);
}

TEST(different_params_type_user_or_dedup_false_create)
{
    struct st_ctx c = st_setup();
    char a[TS_ID_MAX], b[TS_ID_MAX];
    create_want(c.s, c.alice, "{\"type\":\"t\",\"params\":{\"a\":[1,2]}}", 201, 0, 0, a);
    create_want(c.s, c.alice, "{\"type\":\"t\",\"params\":{\"a\":[2,1]}}", 201, 0, 0, b);
    create_want(c.s, c.alice, "{\"type\":\"t\",\"params\":{\"a\":[1,2],\"z\":null}}", 201, 0, 0, b);
    create_want(c.s, c.alice, "{\"type\":\"t\",\"params\":{\"a\":\"[1,2]\"}}", 201, 0, 0, b);
    create_want(c.s, c.alice, "{\"type\":\"u\",\"params\":{\"a\":[1,2]}}", 201, 0, 0, b);
    create_want(c.s, c.bob, "{\"type\":\"t\",\"params\":{\"a\":[1,2]}}", 201, 0, 0, b);
    CHECK(strcmp(a, b) != 0);
    char nd[TS_ID_MAX];
    create_want(c.s, c.alice, "{\"type\":\"t\",\"params\":{\"a\":[1,2]},\"dedup\":false}", 201, 0,
                0, nd);
    CHECK(strcmp(a, nd) != 0);
    create_want(c.s, c.alice, "{\"type\":\"t\",\"params\":{\"a\":[1,2]},\"dedup\":true}", 200, 1, 0,
                b);
    CHECK(!strcmp(b, a) || !strcmp(b, nd));    /* one of the two identical pending jobs */
    CHECK_EQ(st_total(c.s, c.alice, ""), 6);
    CHECK_EQ(st_total(c.s, c.bob, ""), 1);
    testsrv_stop(c.s);
}

TEST(dedup_and_cache_flags_are_booleans)
{
    struct st_ctx c = st_setup();
    struct resp r;
    CHECK_EQ(st_create(c.s, c.alice, "{\"type\":\"t\",\"dedup\":\"no\"}", &r), 400);
    CHECK_STR_EQ(st_code(&r), "invalid_argument");
    CHECK_STR_EQ(jstr(r.json, "error.field"), "dedup");
    resp_free(&r);
    CHECK_EQ(st_create(c.s, c.alice, "{\"type\":\"t\",\"cache\":1}", &r), 400);
    CHECK_STR_EQ(jstr(r.json, "error.field"), "cache");
    resp_free(&r);
    CHECK_EQ(st_total(c.s, c.alice, ""), 0);
    testsrv_stop(c.s);
}

TEST(processing_dedups_finished_does_not)
{
    struct st_ctx c = st_setup();
    char a[TS_ID_MAX], b[TS_ID_MAX], lease[TS_ID_MAX], got[TS_ID_MAX];
    const char *body = "{\"type\":\"t\",\"queue\":\"pq\",\"params\":{\"k\":1}}";
    create_want(c.s, c.alice, body, 201, 0, 0, a);
    REQUIRE(ts_claim1(c.s, c.worker, "pq", got, lease));
    CHECK_STR_EQ(got, a);
    create_want(c.s, c.alice, body, 200, 1, 0, b);          /* processing still dedups */
    CHECK_STR_EQ(b, a);
    /* fails for good → a new job (the cache holds completed jobs only) */
    char fb[256];
    snprintf(fb, sizeof fb, "{\"lease_token\":\"%s\",\"error_message\":\"x\",\"retryable\":false}",
             lease);
    REQUIRE_EQ(st_post0(c.s, c.worker, a, "fail", fb), 200);
    create_want(c.s, c.alice, body, 201, 0, 0, b);
    CHECK(strcmp(a, b) != 0);
    /* cancelled → a new job */
    REQUIRE_EQ(st_post0(c.s, c.alice, b, "cancel", NULL), 200);
    create_want(c.s, c.alice, body, 201, 0, 0, a);
    CHECK(strcmp(a, b) != 0);
    /* completed with cache:false → a new job */
    st_claim_complete(c.s, c.worker, "pq", "{\"r\":1}", got);
    CHECK_STR_EQ(got, a);
    create_want(c.s, c.alice, "{\"type\":\"t\",\"queue\":\"pq\",\"params\":{\"k\":1},\"cache\":false}",
                201, 0, 0, b);
    CHECK(strcmp(a, b) != 0);
    testsrv_stop(c.s);
}

TEST(dedup_window_ends)
{
    const char *extra[] = { "--dedup-window-ms", "60000", NULL };
    struct testsrv *s = st_start_with(extra);
    const char *u = ts_token(s, "alice", "user");
    char a[TS_ID_MAX], b[TS_ID_MAX];
    const char *body = "{\"type\":\"t\",\"params\":{\"w\":1}}";
    create_want(s, u, body, 201, 0, 0, a);
    ts_advance(s, 59000);
    create_want(s, u, body, 200, 1, 0, b);
    CHECK_STR_EQ(b, a);
    ts_advance(s, 2000);                                     /* created 61 s ago */
    create_want(s, u, body, 201, 0, 0, b);
    CHECK(strcmp(a, b) != 0);
    create_want(s, u, body, 200, 1, 0, a);                   /* the new one dedups now */
    CHECK_STR_EQ(a, b);
    testsrv_stop(s);
}

TEST(unique_key_matches_active_job_of_same_user)
{
    struct st_ctx c = st_setup();
    char a[TS_ID_MAX], b[TS_ID_MAX];
    create_want(c.s, c.alice, "{\"type\":\"t\",\"unique_key\":\"order:42\",\"params\":{\"v\":1}}",
                201, 0, 0, a);
    /* other params, other type, even dedup:false: the key decides */
    create_want(c.s, c.alice, "{\"type\":\"x\",\"unique_key\":\"order:42\",\"params\":{\"v\":2},"
                "\"dedup\":false}", 200, 1, 0, b);
    CHECK_STR_EQ(b, a);
    struct resp r;
    CHECK_EQ(ts_get(c.s, c.alice, a, &r), 200);
    CHECK_EQ(jint(r.json, "params.v"), 1);                   /* untouched */
    CHECK_STR_EQ(jstr(r.json, "type"), "t");
    resp_free(&r);
    create_want(c.s, c.bob, "{\"type\":\"t\",\"unique_key\":\"order:42\"}", 201, 0, 0, b);
    CHECK(strcmp(a, b) != 0);
    /* once the job is finished the key is free again */
    REQUIRE_EQ(st_post0(c.s, c.alice, a, "cancel", NULL), 200);
    create_want(c.s, c.alice, "{\"type\":\"t\",\"unique_key\":\"order:42\",\"params\":{\"v\":3}}",
                201, 0, 0, b);
    CHECK(strcmp(a, b) != 0);
    CHECK_EQ(st_total(c.s, c.alice, ""), 2);
    testsrv_stop(c.s);
}

TEST(unique_key_is_validated)
{
    struct st_ctx c = st_setup();
    struct resp r;
    char k128[160], body[256];
    const char *bad[] = { "\"\"", "\"has space\"", "\"a/b\"", "7", "[\"k\"]", NULL };
    for (int i = 0; bad[i]; i++) {
        snprintf(body, sizeof body, "{\"type\":\"t\",\"unique_key\":%s}", bad[i]);
        bool ok = CHECK_EQ(st_create(c.s, c.alice, body, &r), 400);
        ok &= CHECK_STR_EQ(jstr(r.json, "error.field"), "unique_key");
        if (!ok) fprintf(stderr, "  %s -> %ld %s\n", body, r.status, r.body);
        resp_free(&r);
    }
    memset(k128, 'k', 129);
    k128[129] = '\0';
    snprintf(body, sizeof body, "{\"type\":\"t\",\"unique_key\":\"%s\"}", k128);
    CHECK_EQ(st_create(c.s, c.alice, body, &r), 400);
    resp_free(&r);
    k128[128] = '\0';
    snprintf(body, sizeof body, "{\"type\":\"t\",\"unique_key\":\"%s\",\"dedup\":false}", k128);
    CHECK_EQ(st_create(c.s, c.alice, body, &r), 201);
    resp_free(&r);
    CHECK_EQ(st_create(c.s, c.alice, "{\"type\":\"t\",\"unique_key\":\"A-z_0.9:x\",\"dedup\":false}",
                         &r), 201);
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST(fifty_concurrent_identical_creates_make_one_job)
{
    struct st_ctx c = st_setup();
    enum { N = 50 };
    const char *toks[N], *bodies[N];
    struct resp out[N];
    for (int i = 0; i < N; i++) {
        toks[i] = c.alice;
        bodies[i] = "{\"type\":\"race\",\"params\":{\"same\":true,\"n\":[1,2,3]}}";
    }
    st_parallel_post(c.s, N, "/v1/jobs", toks, bodies, out);
    int created = 0, deduped = 0;
    const char *id0 = NULL;
    for (int i = 0; i < N; i++) {
        const char *id = jstr(out[i].json, "id");
        if (out[i].status == 201 && jbool(out[i].json, "deduplicated") == 0) created++;
        else if (out[i].status == 200 && jbool(out[i].json, "deduplicated") == 1) deduped++;
        else fprintf(stderr, "  [%d] -> %ld %s\n", i, out[i].status, out[i].body);
        if (!id0) id0 = id;
        if (!CHECK(id && id0 && !strcmp(id, id0))) fprintf(stderr, "  [%d] id %s\n", i, id);
    }
    CHECK_EQ(created, 1);
    CHECK_EQ(deduped, N - 1);
    for (int i = 0; i < N; i++) resp_free(&out[i]);
    CHECK_EQ(st_total(c.s, c.alice, ""), 1);
    testsrv_stop(c.s);
}

TEST_MAIN()
