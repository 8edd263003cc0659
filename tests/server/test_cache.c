/*
 * test_cache.c - the result cache (docs/API.md, issue 4): a create that matches a
 * completed job of the same user, type and canonical params within the cache TTL answers
 * 200 with that job and "cached": true; cache:false opts out; per-type TTLs
 * (--cache-ttl-type, 0 disables); a deleted job leaves the cache. Fake clock only.
 */
#include "srvtest.h"

static const char *const cache_flags[] = {
    "--cache-ttl-ms", "60000", "--cache-ttl-type", "off=0,short=1000", NULL
};

struct cc {
    struct testsrv *s;
    const char *alice, *bob, *worker;
};

static struct cc cc_setup(void)
{
    struct cc c;
    c.s = st_start_with(cache_flags);
    c.alice = ts_token(c.s, "alice", "user");
    c.bob = ts_token(c.s, "bob", "user");
    c.worker = ts_token(c.s, "w", "worker");
    return c;
}

/* Creates body as alice-or-other, completes it with result_json through queue; id out. */
static void make_completed(struct cc *c, const char *token, const char *body, const char *queue,
                           const char *result_json, char *id)
{
    char got[TS_ID_MAX];
    REQUIRE_EQ(ts_enqueue(c->s, token, body, id), 201);
    st_claim_complete(c->s, c->worker, queue, result_json, got);
    REQUIRE_STR_EQ(got, id);
}

/* POST body; CHECKs want status and cached flag; returns the reply's id in id. */
static void create_cached(struct cc *c, const char *token, const char *body, long want,
                          int cached, char *id)
{
    struct resp r;
    long st = st_create(c->s, token, body, &r);
    bool ok = CHECK_EQ(st, want);
    ok &= CHECK_EQ(jbool(r.json, "cached"), cached);
    ok &= CHECK_EQ(jbool(r.json, "deduplicated"), 0);
    if (!ok) fprintf(stderr, "  POST /v1/jobs %s -> %ld %s\n", body, st, r.body);
    snprintf(id, TS_ID_MAX, "%s", jstr(r.json, "id") ? jstr(r.json, "id") : "");
    resp_free(&r);
}

TEST(completed_job_answers_identical_create)
{
    struct cc c = cc_setup();
    char a[TS_ID_MAX], b[TS_ID_MAX];
    make_completed(&c, c.alice, "{\"type\":\"rep\",\"queue\":\"cq\",\"params\":{\"m\":\"10\",\"y\":2026}}",
                   "cq", "{\"rows\":7}", a);
    struct resp r;
    CHECK_EQ(st_create(c.s, c.alice, "{\"type\":\"rep\",\"queue\":\"cq\",\"params\":{\"y\":2026.0,"
                       "\"m\":\"\\u0031\\u0030\"}}", &r), 200);
    CHECK_EQ(jbool(r.json, "cached"), 1);
    CHECK_EQ(jbool(r.json, "deduplicated"), 0);
    CHECK_STR_EQ(jstr(r.json, "id"), a);
    CHECK_STR_EQ(jstr(r.json, "status"), "completed");
    CHECK_EQ(jint(r.json, "result.rows"), 7);
    resp_free(&r);
    CHECK_EQ(st_total(c.s, c.alice, ""), 1);
    /* cache:false runs it again */
    create_cached(&c, c.alice, "{\"type\":\"rep\",\"params\":{\"m\":\"10\",\"y\":2026},\"cache\":false}",
                  201, 0, b);
    CHECK(strcmp(a, b) != 0);
    /* another user, other params, other type: no hit */
    create_cached(&c, c.bob, "{\"type\":\"rep\",\"params\":{\"m\":\"10\",\"y\":2026}}", 201, 0, b);
    create_cached(&c, c.alice, "{\"type\":\"rep\",\"params\":{\"m\":\"11\",\"y\":2026}}", 201, 0, b);
    create_cached(&c, c.alice, "{\"type\":\"rep2\",\"params\":{\"m\":\"10\",\"y\":2026}}", 201, 0, b);
    testsrv_stop(c.s);
}

TEST(cache_ttl_ends)
{
    struct cc c = cc_setup();
    char a[TS_ID_MAX], b[TS_ID_MAX];
    const char *body = "{\"type\":\"rep\",\"queue\":\"cq\",\"params\":{\"p\":1}}";
    make_completed(&c, c.alice, body, "cq", "{\"ok\":true}", a);
    ts_advance(c.s, 59000);
    create_cached(&c, c.alice, body, 200, 1, b);
    CHECK_STR_EQ(b, a);
    ts_advance(c.s, 2000);                       /* completed 61 s ago, TTL 60 s */
    create_cached(&c, c.alice, body, 201, 0, b);
    CHECK(strcmp(a, b) != 0);
    testsrv_stop(c.s);
}

TEST(per_type_ttl)
{
    struct cc c = cc_setup();
    char a[TS_ID_MAX], b[TS_ID_MAX];
    /* off=0: never cached */
    make_completed(&c, c.alice, "{\"type\":\"off\",\"queue\":\"cq\"}", "cq", NULL, a);
    create_cached(&c, c.alice, "{\"type\":\"off\",\"queue\":\"cq\"}", 201, 0, b);
    CHECK(strcmp(a, b) != 0);
    REQUIRE_EQ(st_post0(c.s, c.alice, b, "cancel", NULL), 200);
    /* short=1000 */
    make_completed(&c, c.alice, "{\"type\":\"short\",\"queue\":\"cq\"}", "cq", "1", a);
    ts_advance(c.s, 500);
    create_cached(&c, c.alice, "{\"type\":\"short\",\"queue\":\"cq\"}", 200, 1, b);
    CHECK_STR_EQ(b, a);
    ts_advance(c.s, 1000);
    create_cached(&c, c.alice, "{\"type\":\"short\",\"queue\":\"cq\"}", 201, 0, b);
    CHECK(strcmp(a, b) != 0);
    testsrv_stop(c.s);
}

TEST(deleted_or_failed_jobs_are_not_cached)
{
    struct cc c = cc_setup();
    char a[TS_ID_MAX], b[TS_ID_MAX], lease[TS_ID_MAX], got[TS_ID_MAX];
    const char *body = "{\"type\":\"rep\",\"queue\":\"cq\",\"params\":{\"d\":1}}";
    make_completed(&c, c.alice, body, "cq", "{\"r\":1}", a);
    struct resp r;
    CHECK_EQ(ts_reqf(c.s, "DELETE", c.alice, NULL, &r, "/v1/jobs/%s", a), 204);
    resp_free(&r);
    create_cached(&c, c.alice, body, 201, 0, b);
    CHECK(strcmp(a, b) != 0);
    /* a failed job is not a result */
    REQUIRE(ts_claim1(c.s, c.worker, "cq", got, lease));
    char fb[256];
    snprintf(fb, sizeof fb, "{\"lease_token\":\"%s\",\"error_message\":\"x\",\"retryable\":false}",
             lease);
    REQUIRE_EQ(st_post0(c.s, c.worker, got, "fail", fb), 200);
    create_cached(&c, c.alice, body, 201, 0, a);
    CHECK(strcmp(a, b) != 0);
    /* a retried (cancelled) job is pending again → dedup, not cache */
    REQUIRE_EQ(st_post0(c.s, c.alice, a, "cancel", NULL), 200);
    REQUIRE_EQ(st_post0(c.s, c.alice, b, "retry", NULL), 200);
    CHECK_EQ(st_create(c.s, c.alice, body, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "id"), b);
    CHECK_EQ(jbool(r.json, "deduplicated"), 1);
    CHECK_EQ(jbool(r.json, "cached"), 0);
    resp_free(&r);
    testsrv_stop(c.s);
}

/* A pending duplicate of a completed job is found by dedup first (rule 3 before rule 4). */
TEST(dedup_before_cache)
{
    struct cc c = cc_setup();
    char a[TS_ID_MAX], b[TS_ID_MAX];
    const char *body = "{\"type\":\"rep\",\"queue\":\"cq\",\"params\":{\"o\":1}}";
    make_completed(&c, c.alice, body, "cq", "{\"r\":1}", a);
    create_cached(&c, c.alice, "{\"type\":\"rep\",\"queue\":\"cq\",\"params\":{\"o\":1},\"cache\":false}",
                  201, 0, b);
    struct resp r;
    CHECK_EQ(st_create(c.s, c.alice, body, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "id"), b);
    CHECK_EQ(jbool(r.json, "deduplicated"), 1);
    CHECK_EQ(jbool(r.json, "cached"), 0);
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST_MAIN()
