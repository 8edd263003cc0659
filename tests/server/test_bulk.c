/*
 * test_bulk.c - POST /v1/jobs/batch (all or nothing, item order, every bad item listed,
 * unique_key return/replace upserts, no dedup) and POST /v1/jobs/cancel by ids or by
 * filter, own jobs only (docs/API.md, issue 4).
 */
#include "srvtest.h"

#include <stdlib.h>

static long batch(struct testsrv *s, const char *token, const char *body, struct resp *out)
{
    return ts_req(s, "POST", "/v1/jobs/batch", token, body, out);
}

static long bcancel(struct testsrv *s, const char *token, const char *body, struct resp *out)
{
    return ts_req(s, "POST", "/v1/jobs/cancel", token, body, out);
}

/* Status of job id as token ("" if not readable). */
static void status_of(struct testsrv *s, const char *token, const char *id, char *out)
{
    st_field(s, token, id, "status", out, 32);
}

TEST(batch_creates_in_item_order)
{
    struct st_ctx c = st_setup();
    struct resp r;
    CHECK_EQ(batch(c.s, c.alice, "{\"jobs\":[{\"type\":\"a\",\"priority\":5},{\"type\":\"b\","
                   "\"queue\":\"q2\",\"params\":{\"x\":1}},{\"type\":\"c\",\"delay_ms\":1000},"
                   "{\"type\":\"a\",\"priority\":5}]}", &r), 201);
    CHECK_EQ(jint(r.json, "created"), 4);
    CHECK_EQ(jint(r.json, "existing"), 0);
    REQUIRE_EQ(json_array_size(jpath(r.json, "jobs")), 4);
    CHECK_STR_EQ(jstr(r.json, "jobs.0.type"), "a");
    CHECK_EQ(jint(r.json, "jobs.0.priority"), 5);
    CHECK_STR_EQ(jstr(r.json, "jobs.1.type"), "b");
    CHECK_STR_EQ(jstr(r.json, "jobs.1.queue"), "q2");
    CHECK_EQ(jint(r.json, "jobs.1.params.x"), 1);
    CHECK_STR_EQ(jstr(r.json, "jobs.2.type"), "c");
    CHECK_EQ(st_ms_between(jpath(r.json, "jobs.2"), "created_at", "run_at"), 1000);
    CHECK_STR_EQ(jstr(r.json, "jobs.0.user_id"), "alice");
    CHECK_STR_EQ(jstr(r.json, "jobs.3.status"), "pending");
    /* identical items are not deduplicated by the bulk path */
    REQUIRE(jstr(r.json, "jobs.0.id") && jstr(r.json, "jobs.3.id"));
    CHECK(strcmp(jstr(r.json, "jobs.0.id"), jstr(r.json, "jobs.3.id")) != 0);
    char id0[TS_ID_MAX];
    snprintf(id0, sizeof id0, "%s", jstr(r.json, "jobs.0.id"));
    resp_free(&r);
    CHECK_EQ(st_total(c.s, c.alice, ""), 4);
    /* nor against an existing pending job */
    CHECK_EQ(batch(c.s, c.alice, "{\"jobs\":[{\"type\":\"a\",\"priority\":5}]}", &r), 201);
    CHECK_EQ(jint(r.json, "created"), 1);
    CHECK(jstr(r.json, "jobs.0.id") && strcmp(jstr(r.json, "jobs.0.id"), id0) != 0);
    resp_free(&r);
    CHECK_EQ(st_total(c.s, c.alice, ""), 5);
    testsrv_stop(c.s);
}

TEST(batch_invalid_items_create_nothing)
{
    struct st_ctx c = st_setup();
    struct resp r;
    CHECK_EQ(batch(c.s, c.alice, "{\"jobs\":[{\"type\":\"ok\"},{\"type\":\"ok\",\"priority\":5000},"
                   "{\"type\":\"ok\"},{\"type\":\"bad type\"}]}", &r), 400);
    CHECK_STR_EQ(st_code(&r), "invalid_argument");
    CHECK_STR_EQ(jstr(r.json, "error.field"), "jobs[1].priority");
    json_t *d = jpath(r.json, "error.details");
    if (!d) d = jpath(r.json, "details");
    CHECK_EQ(json_array_size(d), 2);
    CHECK_EQ(jint(d, "0.index"), 1);
    CHECK_STR_EQ(jstr(d, "0.field"), "priority");
    CHECK_STR_EQ(jstr(d, "0.code"), "invalid_argument");
    CHECK(jstr(d, "0.message") != NULL);
    CHECK_EQ(jint(d, "1.index"), 3);
    CHECK_STR_EQ(jstr(d, "1.field"), "type");
    if (th_failed()) fprintf(stderr, "  %s\n", r.body);
    resp_free(&r);
    CHECK_EQ(st_total(c.s, c.alice, ""), 0);

    const char *bad[] = { "{\"jobs\":[]}", "{}", "{\"jobs\":{}}", "{\"jobs\":[7]}",
                          "{\"jobs\":[{\"type\":\"a\"}],\"on_conflict\":\"merge\"}", NULL };
    for (int i = 0; bad[i]; i++) {
        if (!CHECK_EQ(batch(c.s, c.alice, bad[i], &r), 400)) fprintf(stderr, "  %s\n", bad[i]);
        resp_free(&r);
    }
    CHECK_EQ(st_total(c.s, c.alice, ""), 0);
    testsrv_stop(c.s);
}

/* {"jobs":[n × {"type":"big","params":{"i":k}}]} (malloc'd) */
static char *big_batch(int n)
{
    size_t cap = (size_t)n * 48 + 64, len = 0;
    char *b = malloc(cap);
    len += (size_t)snprintf(b + len, cap - len, "{\"jobs\":[");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(b + len, cap - len, "%s{\"type\":\"big\",\"params\":{\"i\":%d}}",
                                i ? "," : "", i);
    snprintf(b + len, cap - len, "]}");
    return b;
}

TEST(batch_of_1000_ok_1001_refused)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *u = ts_token_limit(s, "bulk", "user", 0);
    struct resp r;
    char *b = big_batch(1001);
    CHECK_EQ(batch(s, u, b, &r), 400);
    CHECK_STR_EQ(st_code(&r), "invalid_argument");
    resp_free(&r);
    free(b);
    CHECK_EQ(st_total(s, u, ""), 0);
    b = big_batch(1000);
    CHECK_EQ(batch(s, u, b, &r), 201);
    CHECK_EQ(jint(r.json, "created"), 1000);
    REQUIRE_EQ(json_array_size(jpath(r.json, "jobs")), 1000);
    int in_order = 0;
    for (size_t i = 0; i < 1000; i++)
        in_order += jint(json_array_get(jpath(r.json, "jobs"), i), "params.i") == (int64_t)i;
    CHECK_EQ(in_order, 1000);
    resp_free(&r);
    free(b);
    CHECK_EQ(st_total(s, u, ""), 1000);
    testsrv_stop(s);
}

TEST(unique_key_return_and_replace)
{
    struct st_ctx c = st_setup();
    struct resp r;
    char k1[TS_ID_MAX], k2[TS_ID_MAX];
    st_enq(c.s, c.alice, k1, "{\"type\":\"u\",\"unique_key\":\"k1\",\"params\":{\"v\":1}}");
    st_enq(c.s, c.alice, k2, "{\"type\":\"u\",\"unique_key\":\"k2\",\"params\":{\"v\":1}}");
    /* return (default): the existing job, untouched, in the item's place */
    CHECK_EQ(batch(c.s, c.alice, "{\"jobs\":[{\"type\":\"n\"},{\"type\":\"u\",\"unique_key\":\"k1\","
                   "\"params\":{\"v\":2},\"priority\":9}]}", &r), 201);
    CHECK_EQ(jint(r.json, "created"), 1);
    CHECK_EQ(jint(r.json, "existing"), 1);
    CHECK_STR_EQ(jstr(r.json, "jobs.0.type"), "n");
    CHECK_STR_EQ(jstr(r.json, "jobs.1.id"), k1);
    CHECK_EQ(jint(r.json, "jobs.1.params.v"), 1);
    CHECK_EQ(jint(r.json, "jobs.1.priority"), 0);
    resp_free(&r);
    /* replace: params, priority, run_at taken over; same id */
    CHECK_EQ(batch(c.s, c.alice, "{\"on_conflict\":\"replace\",\"jobs\":[{\"type\":\"u\","
                   "\"unique_key\":\"k2\",\"params\":{\"v\":3},\"priority\":7,\"delay_ms\":5000}]}",
                   &r), 201);
    CHECK_EQ(jint(r.json, "created"), 0);
    CHECK_EQ(jint(r.json, "existing"), 1);
    CHECK_STR_EQ(jstr(r.json, "jobs.0.id"), k2);
    CHECK_EQ(jint(r.json, "jobs.0.params.v"), 3);
    resp_free(&r);
    CHECK_EQ(ts_get(c.s, c.alice, k2, &r), 200);
    CHECK_EQ(jint(r.json, "params.v"), 3);
    CHECK_EQ(jint(r.json, "priority"), 7);
    CHECK_STR_EQ(jstr(r.json, "status"), "pending");
    CHECK_EQ(st_ms_between(r.json, "created_at", "run_at"), 5000);
    resp_free(&r);
    /* a bob item with alice's key is bob's own new job */
    CHECK_EQ(batch(c.s, c.bob, "{\"on_conflict\":\"replace\",\"jobs\":[{\"type\":\"u\","
                   "\"unique_key\":\"k2\",\"params\":{\"v\":4}}]}", &r), 201);
    CHECK_EQ(jint(r.json, "created"), 1);
    resp_free(&r);
    CHECK_EQ(st_int(c.s, c.alice, k2, "params.v"), 3);
    /* a processing job is not replaced (only pending ones are) */
    char id[TS_ID_MAX], lease[TS_ID_MAX];
    st_enq(c.s, c.alice, id, "{\"type\":\"u\",\"queue\":\"pq\",\"unique_key\":\"k3\",\"params\":{\"v\":1}}");
    REQUIRE(ts_claim1(c.s, c.worker, "pq", id, lease));
    CHECK_EQ(batch(c.s, c.alice, "{\"on_conflict\":\"replace\",\"jobs\":[{\"type\":\"u\","
                   "\"queue\":\"pq\",\"unique_key\":\"k3\",\"params\":{\"v\":9}}]}", &r), 201);
    resp_free(&r);
    CHECK_EQ(st_int(c.s, c.alice, id, "params.v"), 1);
    testsrv_stop(c.s);
}

TEST(cancel_by_ids_counts_own_cancellable_jobs)
{
    struct st_ctx c = st_setup();
    char a1[TS_ID_MAX], a2[TS_ID_MAX], a3[TS_ID_MAX], b1[TS_ID_MAX], st[32], body[512];
    struct resp r;
    st_enq(c.s, c.alice, a1, "{\"type\":\"t\",\"params\":{\"i\":1}}");
    st_enq(c.s, c.alice, a2, "{\"type\":\"t\",\"params\":{\"i\":2}}");
    st_enq(c.s, c.alice, a3, "{\"type\":\"t\",\"params\":{\"i\":3}}");
    st_enq(c.s, c.bob, b1, "{\"type\":\"t\",\"params\":{\"i\":1}}");
    REQUIRE_EQ(st_post0(c.s, c.alice, a3, "cancel", NULL), 200);
    snprintf(body, sizeof body, "{\"ids\":[\"%s\",\"%s\",\"%s\",\"%s\",\"01JD7Q4K3M8ZC2W5T9XAV6B1NE\"]}",
             a1, a2, a3, b1);
    CHECK_EQ(bcancel(c.s, c.alice, body, &r), 200);
    CHECK_EQ(jint(r.json, "cancelled"), 2);
    resp_free(&r);
    status_of(c.s, c.alice, a1, st);
    CHECK_STR_EQ(st, "cancelled");
    status_of(c.s, c.alice, a2, st);
    CHECK_STR_EQ(st, "cancelled");
    status_of(c.s, c.bob, b1, st);
    CHECK_STR_EQ(st, "pending");
    /* admin cancels anyone's */
    snprintf(body, sizeof body, "{\"ids\":[\"%s\",\"%s\"]}", a1, b1);
    CHECK_EQ(bcancel(c.s, c.s->admin, body, &r), 200);
    CHECK_EQ(jint(r.json, "cancelled"), 1);
    resp_free(&r);
    status_of(c.s, c.bob, b1, st);
    CHECK_STR_EQ(st, "cancelled");
    testsrv_stop(c.s);
}

TEST(cancel_by_filter)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *al = ts_token_limit(s, "alice", "user", 0), *bo = ts_token(s, "bob", "user");
    const char *w = ts_token(s, "w", "worker");
    char id[TS_ID_MAX], lease[TS_ID_MAX];
    struct resp r;
    for (int i = 0; i < 4; i++) {
        char b[128];
        snprintf(b, sizeof b, "{\"type\":\"x\",\"queue\":\"fq\",\"params\":{\"i\":%d}}", i);
        st_enq(s, al, id, b);
    }
    st_enq(s, al, id, "{\"type\":\"y\",\"queue\":\"fq\"}");
    st_enq(s, al, id, "{\"type\":\"x\",\"queue\":\"other\"}");
    st_enq(s, bo, id, "{\"type\":\"x\",\"queue\":\"fq\"}");
    REQUIRE(ts_claim1(s, w, "fq", id, lease));             /* alice's first x: processing */
    CHECK_EQ(bcancel(s, al, "{\"filter\":{\"status\":\"processing\"}}", &r), 200);
    CHECK_EQ(jint(r.json, "cancelled"), 1);
    resp_free(&r);
    CHECK_EQ(bcancel(s, al, "{\"filter\":{\"type\":\"x\",\"queue\":\"fq\"}}", &r), 200);
    CHECK_EQ(jint(r.json, "cancelled"), 3);
    resp_free(&r);
    CHECK_EQ(st_total(s, al, "status=pending"), 2);        /* y and x@other */
    CHECK_EQ(st_total(s, bo, "status=pending"), 1);        /* bob untouched */
    CHECK_EQ(bcancel(s, al, "{\"filter\":{}}", &r), 200);
    CHECK_EQ(jint(r.json, "cancelled"), 2);
    resp_free(&r);
    CHECK_EQ(st_total(s, al, "status=cancelled"), 6);
    /* admin: all users */
    CHECK_EQ(bcancel(s, s->admin, "{\"filter\":{\"status\":\"pending\"}}", &r), 200);
    CHECK_EQ(jint(r.json, "cancelled"), 1);
    resp_free(&r);
    testsrv_stop(s);
}

TEST(cancel_request_is_validated)
{
    struct st_ctx c = st_setup();
    struct resp r;
    const char *bad[] = {
        "{}", "{\"ids\":[],\"filter\":{}}", "{\"ids\":\"x\"}", "{\"filter\":[]}",
        "{\"filter\":{\"status\":\"completed\"}}", "{\"ids\":[7]}", NULL
    };
    for (int i = 0; bad[i]; i++) {
        bool ok = CHECK_EQ(bcancel(c.s, c.alice, bad[i], &r), 400);
        ok &= CHECK_STR_EQ(st_code(&r), "invalid_argument");
        if (!ok) fprintf(stderr, "  %s -> %ld %s\n", bad[i], r.status, r.body);
        resp_free(&r);
    }
    /* more than 1000 ids */
    size_t cap = 1001 * 32 + 32, len = 0;
    char *b = malloc(cap);
    len += (size_t)snprintf(b, cap, "{\"ids\":[");
    for (int i = 0; i < 1001; i++)
        len += (size_t)snprintf(b + len, cap - len, "%s\"01JD7Q4K3M8ZC2W5T9XAV6B1NE\"", i ? "," : "");
    snprintf(b + len, cap - len, "]}");
    CHECK_EQ(bcancel(c.s, c.alice, b, &r), 400);
    resp_free(&r);
    free(b);
    testsrv_stop(c.s);
}

/* The filter form cancels every matching job, however many (docs: → {"cancelled": n}). */
/* A filter cancel is bounded per call (one short write): "more" says call again. */
TEST(cancel_by_filter_cancels_every_match)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *u = ts_token_limit(s, "many", "user", 0);
    struct resp r;
    char *b = big_batch(1000);
    for (int i = 0; i < 10; i++) {
        REQUIRE_EQ(batch(s, u, b, &r), 201);
        resp_free(&r);
    }
    free(b);
    b = big_batch(50);
    REQUIRE_EQ(batch(s, u, b, &r), 201);
    resp_free(&r);
    free(b);
    CHECK_EQ(bcancel(s, u, "{\"filter\":{\"type\":\"big\"}}", &r), 200);
    if (!CHECK_EQ(jint(r.json, "cancelled"), 10000)) fprintf(stderr, "  %s\n", r.body);
    CHECK_EQ(jbool(r.json, "more"), 1);
    resp_free(&r);
    CHECK_EQ(bcancel(s, u, "{\"filter\":{\"type\":\"big\"}}", &r), 200);
    CHECK_EQ(jint(r.json, "cancelled"), 50);
    CHECK_EQ(jbool(r.json, "more"), 0);
    resp_free(&r);
    CHECK_EQ(st_total(s, u, "status=pending"), 0);
    CHECK_EQ(st_total(s, u, "status=cancelled"), 10050);
    testsrv_stop(s);
}

TEST_MAIN()
