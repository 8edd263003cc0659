/*
 * test_states.c - cancel / retry / delete state rules: which status allows which
 * verb (else 409 invalid_state), what each verb leaves behind, and that a worker
 * holding a lease on a cancelled job gets 409 lease_lost.
 */
#include "srvtest.h"

/* Jobs in each status, made through the API. */
struct fixture {
    struct st_ctx c;
    char pending[TS_ID_MAX];
    char processing[TS_ID_MAX], lease[TS_ID_MAX];
    char completed[TS_ID_MAX];
    char failed[TS_ID_MAX];
    char cancelled[TS_ID_MAX];
};

/* Claims the only due job of queue as worker, REQUIREs it is id, returns its lease in lease. */
static void claim_it(struct fixture *f, const char *queue, const char *id, char *lease)
{
    char got[TS_ID_MAX];
    REQUIRE(ts_claim1(f->c.s, f->c.worker, queue, got, lease));
    REQUIRE_STR_EQ(got, id);
}

static void make_fixture(struct fixture *f)
{
    char lease[TS_ID_MAX], body[256];
    f->c = st_setup();
    st_enq(f->c.s, f->c.alice, f->pending, "{\"type\":\"t\",\"queue\":\"p\"}");
    st_enq(f->c.s, f->c.alice, f->processing, "{\"type\":\"t\",\"queue\":\"r\"}");
    claim_it(f, "r", f->processing, f->lease);
    st_enq(f->c.s, f->c.alice, f->completed, "{\"type\":\"t\",\"queue\":\"c\"}");
    claim_it(f, "c", f->completed, lease);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":1}", lease);
    REQUIRE_EQ(st_post0(f->c.s, f->c.worker, f->completed, "complete", body), 200);
    st_enq(f->c.s, f->c.alice, f->failed, "{\"type\":\"t\",\"queue\":\"f\",\"max_attempts\":1}");
    claim_it(f, "f", f->failed, lease);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"error_message\":\"x\"}", lease);
    REQUIRE_EQ(st_post0(f->c.s, f->c.worker, f->failed, "fail", body), 200);
    st_enq(f->c.s, f->c.alice, f->cancelled, "{\"type\":\"t\",\"queue\":\"x\"}");
    REQUIRE_EQ(st_post0(f->c.s, f->c.alice, f->cancelled, "cancel", NULL), 200);
}

/* Issues method on path for id as alice; CHECKs status and, for 409, invalid_state. */
static void expect(struct fixture *f, const char *method, const char *fmt, const char *id,
                   long want, const char *what)
{
    struct resp r;
    ts_reqf(f->c.s, method, f->c.alice, NULL, &r, fmt, id);
    bool ok = CHECK_EQ(r.status, want);
    if (want == 409) ok &= CHECK_STR_EQ(st_code(&r), "invalid_state");
    if (want == 204) ok &= CHECK_EQ(r.len, 0);
    if (!ok) fprintf(stderr, "  %s %s (%s) -> %s\n", method, fmt, what, r.body);
    resp_free(&r);
}

static void expect_status(struct fixture *f, const char *id, const char *want)
{
    char status[32];
    st_field(f->c.s, f->c.alice, id, "status", status, sizeof status);
    CHECK_STR_EQ(status, want);
}

TEST(cancel_rules)
{
    struct fixture f;
    make_fixture(&f);
    expect(&f, "POST", "/v1/jobs/%s/cancel", f.completed, 409, "completed");
    expect(&f, "POST", "/v1/jobs/%s/cancel", f.failed, 409, "failed");
    expect(&f, "POST", "/v1/jobs/%s/cancel", f.cancelled, 409, "cancelled");
    expect(&f, "POST", "/v1/jobs/%s/cancel", f.pending, 200, "pending");
    expect_status(&f, f.pending, "cancelled");
    expect(&f, "POST", "/v1/jobs/%s/cancel", f.processing, 200, "processing");
    expect_status(&f, f.processing, "cancelled");
    /* the worker's lease on a cancelled job is gone */
    char body[256];
    struct resp r;
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":1}", f.lease);
    CHECK_EQ(st_post(f.c.s, f.c.worker, f.processing, "complete", body, &r), 409);
    CHECK_STR_EQ(st_code(&r), "lease_lost");
    resp_free(&r);
    expect_status(&f, f.processing, "cancelled");
    expect_status(&f, f.completed, "completed");
    expect_status(&f, f.failed, "failed");
    testsrv_stop(f.c.s);
}

TEST(retry_rules)
{
    struct fixture f;
    struct resp r;
    make_fixture(&f);
    expect(&f, "POST", "/v1/jobs/%s/retry", f.pending, 409, "pending");
    expect(&f, "POST", "/v1/jobs/%s/retry", f.processing, 409, "processing");
    expect(&f, "POST", "/v1/jobs/%s/retry", f.completed, 409, "completed");
    CHECK_EQ(st_post(f.c.s, f.c.alice, f.failed, "retry", NULL, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "pending");
    CHECK_EQ(jint(r.json, "attempts"), 0);
    CHECK_EQ(st_ms_between(r.json, "updated_at", "run_at"), 0);   /* run_at = now */
    resp_free(&r);
    CHECK_EQ(st_post(f.c.s, f.c.alice, f.cancelled, "retry", NULL, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "pending");
    CHECK_EQ(jint(r.json, "attempts"), 0);
    resp_free(&r);
    char got[TS_ID_MAX], lease[TS_ID_MAX];
    CHECK(ts_claim1(f.c.s, f.c.worker, "f", got, lease));   /* retried job is due now */
    CHECK_STR_EQ(got, f.failed);
    CHECK_EQ(st_int(f.c.s, f.c.alice, f.failed, "attempts"), 1);
    testsrv_stop(f.c.s);
}

TEST(delete_rules)
{
    struct fixture f;
    struct resp r;
    make_fixture(&f);
    expect(&f, "DELETE", "/v1/jobs/%s", f.pending, 409, "pending");
    expect(&f, "DELETE", "/v1/jobs/%s", f.processing, 409, "processing");
    const char *gone[] = { f.completed, f.failed, f.cancelled };
    for (int i = 0; i < 3; i++) {
        expect(&f, "DELETE", "/v1/jobs/%s", gone[i], 204, "finished");
        CHECK_EQ(ts_get(f.c.s, f.c.alice, gone[i], &r), 404);
        CHECK_STR_EQ(st_code(&r), "not_found");
        resp_free(&r);
        expect(&f, "DELETE", "/v1/jobs/%s", gone[i], 404, "deleted");
        CHECK_EQ(ts_reqf(f.c.s, "GET", f.c.alice, NULL, &r, "/v1/jobs/%s/logs", gone[i]), 404);
        resp_free(&r);
    }
    CHECK_EQ(ts_req(f.c.s, "GET", "/v1/jobs", f.c.alice, NULL, &r), 200);
    CHECK_EQ(jint(r.json, "total_count"), 2);
    resp_free(&r);
    expect_status(&f, f.pending, "pending");
    expect_status(&f, f.processing, "processing");
    testsrv_stop(f.c.s);
}

TEST(delete_takes_logs_along)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX], lease[TS_ID_MAX], body[256];
    struct resp r;
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"dl\"}");
    REQUIRE(ts_claim1(c.s, c.worker, "dl", NULL, lease));
    for (int i = 0; i < 3; i++) {
        snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"level\":\"debug\",\"message\":\"m%d\"}",
                 lease, i);
        CHECK_EQ(st_post0(c.s, c.worker, id, "logs", body), 201);
    }
    CHECK_EQ(ts_reqf(c.s, "GET", c.alice, NULL, &r, "/v1/jobs/%s/logs?limit=2", id), 200);
    CHECK_EQ(json_array_size(jpath(r.json, "logs")), 2);
    CHECK_STR_EQ(jstr(r.json, "logs.0.message"), "m0");
    CHECK(!jis_null(r.json, "next_after") && jpath(r.json, "next_after") != NULL);
    resp_free(&r);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\"}", lease);
    CHECK_EQ(st_post0(c.s, c.worker, id, "complete", body), 200);
    CHECK_EQ(ts_reqf(c.s, "DELETE", c.alice, NULL, &r, "/v1/jobs/%s", id), 204);
    resp_free(&r);
    CHECK_EQ(ts_reqf(c.s, "GET", c.s->admin, NULL, &r, "/v1/jobs/%s/logs", id), 404);
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST_MAIN()
