/*
 * test_stats.c - GET /v1/stats (docs/API.md, issue 4): a user's own counts, the admin's
 * global view with queues, types (durations, last hour) and 60 minutes of throughput;
 * counters follow every transition (they match what the listing counts); the statement
 * count does not depend on how many jobs there are. Fake clock only.
 */
#include "srvtest.h"

#include <stdlib.h>

static const char *const statuses[] = {
    "pending", "processing", "completed", "failed", "cancelled", NULL
};

/* GET /v1/stats as token into out; CHECKs 200. */
static void stats(struct testsrv *s, const char *token, struct resp *out)
{
    if (!CHECK_EQ(ts_req(s, "GET", "/v1/stats", token, NULL, out), 200))
        fprintf(stderr, "  GET /v1/stats -> %s\n", out->body);
}

/* Element of array at dotted whose member key equals val, or NULL. */
static json_t *find_by(json_t *root, const char *dotted, const char *key, const char *val)
{
    json_t *a = jpath(root, dotted);
    for (size_t i = 0; i < json_array_size(a); i++)
        if (jstr(json_array_get(a, i), key) && !strcmp(jstr(json_array_get(a, i), key), val))
            return json_array_get(a, i);
    return NULL;
}

static double jnum(json_t *o, const char *dotted)
{
    json_t *v = jpath(o, dotted);
    return json_is_number(v) ? json_number_value(v) : -1e300;
}

/* Claims one job of queue; fails it (retryable false). */
static void claim_fail(struct testsrv *s, const char *worker, const char *queue)
{
    char id[TS_ID_MAX], lease[TS_ID_MAX], b[256];
    REQUIRE(ts_claim1(s, worker, queue, id, lease));
    snprintf(b, sizeof b, "{\"lease_token\":\"%s\",\"error_message\":\"x\",\"retryable\":false}",
             lease);
    REQUIRE_EQ(st_post0(s, worker, id, "fail", b), 200);
}

TEST(user_counts_and_oldest_pending)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX], lease[TS_ID_MAX];
    struct resp r;
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"s1\",\"params\":{\"i\":1}}");
    ts_advance(c.s, 1000);
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"s1\",\"params\":{\"i\":2}}");
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"sp\"}");
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"sc\"}");
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"sf\"}");
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"sx\"}");
    REQUIRE_EQ(st_post0(c.s, c.alice, id, "cancel", NULL), 200);
    REQUIRE(ts_claim1(c.s, c.worker, "sp", NULL, lease));
    st_claim_complete(c.s, c.worker, "sc", NULL, NULL);
    claim_fail(c.s, c.worker, "sf");
    ts_advance(c.s, 234);
    stats(c.s, c.alice, &r);
    CHECK_STR_EQ(jstr(r.json, "scope"), "user");
    CHECK_EQ(jint(r.json, "counts.pending"), 2);
    CHECK_EQ(jint(r.json, "counts.processing"), 1);
    CHECK_EQ(jint(r.json, "counts.completed"), 1);
    CHECK_EQ(jint(r.json, "counts.failed"), 1);
    CHECK_EQ(jint(r.json, "counts.cancelled"), 1);
    CHECK_EQ(jint(r.json, "counts.total"), 6);
    CHECK_EQ(jint(r.json, "oldest_pending_age_ms"), 1234);
    if (th_failed()) fprintf(stderr, "  %s\n", r.body);
    resp_free(&r);
    stats(c.s, c.bob, &r);
    CHECK_STR_EQ(jstr(r.json, "scope"), "user");
    for (int i = 0; statuses[i]; i++) {
        char k[64];
        snprintf(k, sizeof k, "counts.%s", statuses[i]);
        CHECK_EQ(jint(r.json, k), 0);
    }
    CHECK_EQ(jint(r.json, "counts.total"), 0);
    CHECK(jis_null(r.json, "oldest_pending_age_ms"));
    resp_free(&r);
    /* the admin view adds bob's and alice's */
    st_enq(c.s, c.bob, id, "{\"type\":\"t\",\"queue\":\"s1\"}");
    stats(c.s, c.s->admin, &r);
    CHECK_STR_EQ(jstr(r.json, "scope"), "global");
    CHECK_EQ(jint(r.json, "counts.pending"), 3);
    CHECK_EQ(jint(r.json, "counts.total"), 7);
    CHECK_EQ(jint(r.json, "oldest_pending_age_ms"), 1234);
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST(admin_queues_types_throughput)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX], lease[TS_ID_MAX], b[256];
    struct resp r;
    /* two completed "ta" jobs taking 1 s and 3 s; one failed "tf" taking 2 s */
    int64_t took[] = { 1000, 3000 };
    for (int i = 0; i < 2; i++) {
        snprintf(b, sizeof b, "{\"type\":\"ta\",\"queue\":\"qa\",\"params\":{\"i\":%d}}", i);
        st_enq(c.s, c.alice, id, b);
        REQUIRE(ts_claim1(c.s, c.worker, "qa", id, lease));
        ts_advance(c.s, took[i]);
        snprintf(b, sizeof b, "{\"lease_token\":\"%s\"}", lease);
        REQUIRE_EQ(st_post0(c.s, c.worker, id, "complete", b), 200);
    }
    st_enq(c.s, c.bob, id, "{\"type\":\"tf\",\"queue\":\"qb\"}");
    REQUIRE(ts_claim1(c.s, c.worker, "qb", id, lease));
    ts_advance(c.s, 2000);
    snprintf(b, sizeof b, "{\"lease_token\":\"%s\",\"error_message\":\"x\",\"retryable\":false}", lease);
    REQUIRE_EQ(st_post0(c.s, c.worker, id, "fail", b), 200);
    /* queue qa: one pending (aged 500 ms) and one processing */
    st_enq(c.s, c.alice, id, "{\"type\":\"ta\",\"queue\":\"qa\",\"params\":{\"i\":9}}");
    st_enq(c.s, c.alice, id, "{\"type\":\"ta\",\"queue\":\"qa\",\"params\":{\"i\":8}}");
    REQUIRE(ts_claim1(c.s, c.worker, "qa", NULL, NULL));
    ts_advance(c.s, 500);

    stats(c.s, c.s->admin, &r);
    CHECK_STR_EQ(jstr(r.json, "scope"), "global");
    json_t *q = find_by(r.json, "queues", "queue", "qa");
    CHECK(q != NULL);
    CHECK_EQ(jint(q, "pending"), 1);
    CHECK_EQ(jint(q, "processing"), 1);
    CHECK_EQ(jint(q, "oldest_pending_age_ms"), 500);
    json_t *ta = find_by(r.json, "types", "type", "ta");
    CHECK(ta != NULL);
    CHECK_EQ(jint(ta, "completed"), 2);
    CHECK_EQ(jint(ta, "pending"), 1);
    CHECK_EQ(jint(ta, "processing"), 1);
    CHECK_EQ(jint(ta, "completed_last_hour"), 2);
    CHECK_EQ(jint(ta, "failed_last_hour"), 0);
    double avg = jnum(ta, "avg_duration_ms"), p95 = jnum(ta, "p95_duration_ms");
    CHECK(avg > 1999 && avg < 2001);
    CHECK(p95 >= 1500 && p95 <= 6000);              /* log-scale bucket around 3000 */
    json_t *tf = find_by(r.json, "types", "type", "tf");
    CHECK(tf != NULL);
    CHECK_EQ(jint(tf, "failed"), 1);
    CHECK_EQ(jint(tf, "failed_last_hour"), 1);
    json_t *tp = jpath(r.json, "throughput");
    CHECK_EQ(json_array_size(tp), 60);
    int64_t done = 0, failed = 0, prev = INT64_MIN;
    for (size_t i = 0; i < json_array_size(tp); i++) {
        json_t *e = json_array_get(tp, i);
        int64_t m = ts_parse_time(jstr(e, "minute"));
        if (!CHECK(m != INT64_MIN && m % 60000 == 0 && m > prev)) break;
        prev = m;
        done += jint(e, "completed");
        failed += jint(e, "failed");
    }
    CHECK_EQ(done, 2);
    CHECK_EQ(failed, 1);
    if (th_failed()) fprintf(stderr, "  %.2000s\n", r.body);
    resp_free(&r);

    /* an hour later the last-hour figures and the throughput window are empty */
    ts_advance(c.s, 3600000 + 120000);
    stats(c.s, c.s->admin, &r);
    ta = find_by(r.json, "types", "type", "ta");
    CHECK_EQ(jint(ta, "completed"), 2);               /* counters stay */
    CHECK_EQ(jint(ta, "completed_last_hour"), 0);
    tp = jpath(r.json, "throughput");
    CHECK_EQ(json_array_size(tp), 60);
    done = 0;
    for (size_t i = 0; i < json_array_size(tp); i++) done += jint(json_array_get(tp, i), "completed");
    CHECK_EQ(done, 0);
    resp_free(&r);
    /* the stats task drops buckets older than 2 h */
    ts_advance(c.s, 3600000);
    CHECK_EQ(ts_req(c.s, "POST", "/v1/admin/maintenance/stats", c.s->admin, NULL, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "name"), "stats");
    CHECK(jint(r.json, "rows") >= 0);
    resp_free(&r);
    testsrv_stop(c.s);
}

/* CHECKs that stats counts as token equal the listing's total_count per status. */
static void counts_match_listing(struct testsrv *s, const char *token)
{
    struct resp r;
    stats(s, token, &r);
    int64_t sum = 0;
    for (int i = 0; statuses[i]; i++) {
        char k[64], q[64];
        snprintf(k, sizeof k, "counts.%s", statuses[i]);
        snprintf(q, sizeof q, "status=%s", statuses[i]);
        int64_t want = st_total(s, token, q);
        if (!CHECK_EQ(jint(r.json, k), want)) fprintf(stderr, "  %s\n", k);
        sum += want;
    }
    CHECK_EQ(jint(r.json, "counts.total"), sum);
    resp_free(&r);
}

TEST(counters_follow_every_transition)
{
    const char *extra[] = { "--retention-ms", "60000", "--cleanup-interval-ms", "3600000", NULL };
    struct testsrv *s = st_start_with(extra);
    const char *u = ts_token_limit(s, "alice", "user", 0);
    const char *v = ts_token_limit(s, "bob", "user", 0);
    const char *w = ts_token(s, "w", "worker");
    char id[TS_ID_MAX], lease[TS_ID_MAX];
    struct resp r;
    REQUIRE_EQ(ts_req(s, "POST", "/v1/jobs/batch", u, "{\"jobs\":[{\"type\":\"a\",\"queue\":\"c1\"},"
                      "{\"type\":\"a\",\"queue\":\"c1\"},{\"type\":\"a\",\"queue\":\"c1\"},"
                      "{\"type\":\"a\",\"queue\":\"c2\"},{\"type\":\"b\",\"queue\":\"c2\"}]}", &r), 201);
    resp_free(&r);
    st_enq(s, v, id, "{\"type\":\"a\",\"queue\":\"c1\"}");
    st_enq(s, u, id, "{\"type\":\"e\",\"queue\":\"c3\",\"ttl_ms\":1000}");   /* will expire */
    st_enq(s, u, id, "{\"type\":\"r\",\"queue\":\"c4\",\"max_attempts\":1}");
    REQUIRE(ts_claim1(s, w, "c4", NULL, NULL));                          /* lease runs out */
    st_claim_complete(s, w, "c1", NULL, id);
    REQUIRE_EQ(st_post0(s, u, id, "cancel", NULL), 409);
    REQUIRE(ts_claim1(s, w, "c1", id, lease));                           /* processing */
    claim_fail(s, w, "c2");
    counts_match_listing(s, u);
    counts_match_listing(s, s->admin);
    ts_advance(s, 31000);                                               /* expire + rescue */
    counts_match_listing(s, u);
    /* retry a failed job, delete a finished one, bulk-cancel */
    CHECK_EQ(ts_reqf(s, "GET", u, NULL, &r, "/v1/jobs?status=failed&limit=1"), 200);
    REQUIRE(jstr(r.json, "jobs.0.id"));
    snprintf(id, sizeof id, "%s", jstr(r.json, "jobs.0.id"));
    resp_free(&r);
    CHECK_EQ(st_post0(s, u, id, "retry", NULL), 200);
    CHECK_EQ(ts_reqf(s, "GET", u, NULL, &r, "/v1/jobs?status=completed&limit=1"), 200);
    REQUIRE(jstr(r.json, "jobs.0.id"));
    snprintf(id, sizeof id, "%s", jstr(r.json, "jobs.0.id"));
    resp_free(&r);
    CHECK_EQ(ts_reqf(s, "DELETE", u, NULL, &r, "/v1/jobs/%s", id), 204);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "POST", "/v1/jobs/cancel", u, "{\"filter\":{\"queue\":\"c2\"}}", &r), 200);
    resp_free(&r);
    counts_match_listing(s, u);
    counts_match_listing(s, v);
    counts_match_listing(s, s->admin);
    /* cleanup of old finished jobs */
    ts_advance(s, 61000);
    CHECK_EQ(ts_req(s, "POST", "/v1/admin/maintenance/cleanup", s->admin, NULL, &r), 200);
    CHECK(jint(r.json, "rows") >= 1);
    resp_free(&r);
    counts_match_listing(s, u);
    counts_match_listing(s, s->admin);
    testsrv_stop(s);
}

/* Statements of GET /v1/stats as token. */
static long stats_stmts(struct testsrv *s, const char *token)
{
    struct resp r;
    stats(s, token, &r);
    long n = r.statements;
    resp_free(&r);
    CHECK(n >= 1);
    return n;
}

/* {"jobs":[n × {"type":"t","params":{"i":k}}]} as token. */
static void fill(struct testsrv *s, const char *token, int n)
{
    size_t cap = (size_t)n * 48 + 32, len = 0;
    char *b = malloc(cap);
    len += (size_t)snprintf(b, cap, "{\"jobs\":[");
    for (int k = 0; k < n; k++)
        len += (size_t)snprintf(b + len, cap - len, "%s{\"type\":\"t\",\"params\":{\"i\":%d}}",
                                k ? "," : "", k);
    snprintf(b + len, cap - len, "]}");
    struct resp r;
    CHECK_EQ(ts_req(s, "POST", "/v1/jobs/batch", token, b, &r), 201);
    resp_free(&r);
    free(b);
}

TEST(stats_statements_do_not_depend_on_job_count)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *few = ts_token_limit(s, "few", "user", 0);
    const char *lots = ts_token_limit(s, "lots", "user", 0);
    const char *w = ts_token(s, "w", "worker");
    fill(s, few, 5);
    st_claim_complete(s, w, "default", NULL, NULL);
    long admin5 = stats_stmts(s, s->admin), user5 = stats_stmts(s, few);
    fill(s, lots, 300);
    for (int i = 0; i < 3; i++) st_claim_complete(s, w, "default", NULL, NULL);
    long admin300 = stats_stmts(s, s->admin), user300 = stats_stmts(s, lots);
    CHECK_EQ(user5, user300);
    CHECK_EQ(admin5, admin300);
    CHECK_EQ(user5, stats_stmts(s, few));
    testsrv_stop(s);
}

TEST_MAIN()
