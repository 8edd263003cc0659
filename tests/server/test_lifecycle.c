/*
 * test_lifecycle.c - a job's life through the real jobqd: round trip with user and
 * worker tokens, retries with backoff, non-retryable failure, lease expiry and
 * stale lease tokens. Time moves only through the fake clock.
 */
#include "srvtest.h"

/* Claims one job of queue as worker; REQUIREs one; copies its reply into out. */
static void claim_one(struct st_ctx *c, const char *queue, const char *body, struct resp *out)
{
    long st = ts_claim(c->s, c->worker, queue, body, out);
    REQUIRE_EQ(st, 200);
    REQUIRE_EQ(json_array_size(jpath(out->json, "jobs")), 1);
}

TEST(round_trip_user_and_worker)
{
    struct st_ctx c = st_setup();
    struct resp r;
    char id[TS_ID_MAX], lease[TS_ID_MAX];
    REQUIRE_EQ(ts_req(c.s, "POST", "/v1/jobs", c.alice,
                      "{\"type\":\"report.build\",\"queue\":\"q1\",\"params\":{\"month\":\"2026-10\"}}",
                      &r), 201);
    snprintf(id, sizeof id, "%s", jstr(r.json, "id"));
    CHECK_EQ(strlen(id), 26);
    CHECK_STR_EQ(jstr(r.json, "status"), "pending");
    CHECK_STR_EQ(jstr(r.json, "user_id"), "alice");
    CHECK_STR_EQ(jstr(r.json, "queue"), "q1");
    CHECK_STR_EQ(jstr(r.json, "type"), "report.build");
    CHECK_STR_EQ(jstr(r.json, "params.month"), "2026-10");
    CHECK_EQ(jint(r.json, "attempts"), 0);
    CHECK_EQ(jint(r.json, "max_attempts"), 3);
    CHECK_EQ(jint(r.json, "priority"), 0);
    CHECK(jpath(r.json, "lease_token") == NULL);
    CHECK_STR_EQ(r.content_type, "application/json");
    CHECK(r.statements >= 1);
    resp_free(&r);

    claim_one(&c, "q1", "{\"worker_id\":\"w-7\",\"lease_ms\":60000}", &r);
    CHECK_STR_EQ(jstr(r.json, "jobs.0.id"), id);
    CHECK_STR_EQ(jstr(r.json, "jobs.0.status"), "processing");
    CHECK_STR_EQ(jstr(r.json, "jobs.0.worker_id"), "w-7");
    CHECK_EQ(jint(r.json, "jobs.0.attempts"), 1);
    CHECK_EQ(st_ms_between(jpath(r.json, "jobs.0"), "updated_at", "lease_expires_at"), 60000);
    REQUIRE(jstr(r.json, "jobs.0.lease_token") != NULL);
    snprintf(lease, sizeof lease, "%s", jstr(r.json, "jobs.0.lease_token"));
    resp_free(&r);

    char body[512];
    snprintf(body, sizeof body,
             "{\"lease_token\":\"%s\",\"progress_percent\":50,\"progress_message\":\"half\"}", lease);
    CHECK_EQ(st_post(c.s, c.worker, id, "heartbeat", body, &r), 200);
    CHECK_EQ(jint(r.json, "progress_percent"), 50);
    CHECK_STR_EQ(jstr(r.json, "status"), "processing");
    resp_free(&r);

    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"level\":\"info\",\"message\":\"hello\","
             "\"metadata\":{\"k\":1}}", lease);
    CHECK_EQ(st_post(c.s, c.worker, id, "logs", body, &r), 201);
    CHECK_STR_EQ(jstr(r.json, "job_id"), id);
    CHECK_STR_EQ(jstr(r.json, "level"), "info");
    CHECK_STR_EQ(jstr(r.json, "message"), "hello");
    CHECK_EQ(jint(r.json, "metadata.k"), 1);
    resp_free(&r);

    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":{\"rows\":10}}", lease);
    CHECK_EQ(st_post(c.s, c.worker, id, "complete", body, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "completed");
    resp_free(&r);

    CHECK_EQ(ts_get(c.s, c.alice, id, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "completed");
    CHECK_EQ(jint(r.json, "result.rows"), 10);
    CHECK_EQ(jint(r.json, "progress_percent"), 50);
    CHECK_STR_EQ(jstr(r.json, "progress_message"), "half");
    CHECK_EQ(jint(r.json, "attempts"), 1);
    CHECK(jstr(r.json, "completed_at") != NULL);
    CHECK(jstr(r.json, "started_at") != NULL);
    CHECK(jpath(r.json, "lease_token") == NULL);
    resp_free(&r);

    CHECK_EQ(ts_reqf(c.s, "GET", c.alice, NULL, &r, "/v1/jobs/%s/logs", id), 200);
    CHECK_EQ(json_array_size(jpath(r.json, "logs")), 1);
    CHECK_STR_EQ(jstr(r.json, "logs.0.message"), "hello");
    CHECK_STR_EQ(jstr(r.json, "logs.0.level"), "info");
    CHECK_STR_EQ(jstr(r.json, "logs.0.job_id"), id);
    CHECK(jis_null(r.json, "next_after"));
    resp_free(&r);

    /* the worker may read any job, too */
    CHECK_EQ(ts_get(c.s, c.worker, id, &r), 200);
    resp_free(&r);
    testsrv_stop(c.s);
}

/* Fails the claimed job (lease) and returns the reply's run_at in ms. */
static int64_t fail_once(struct st_ctx *c, const char *id, const char *lease, int attempt)
{
    struct resp r;
    char body[256];
    snprintf(body, sizeof body,
             "{\"lease_token\":\"%s\",\"error_message\":\"boom\",\"error_code\":\"E_BOOM\"}", lease);
    CHECK_EQ(st_post(c->s, c->worker, id, "fail", body, &r), 200);
    CHECK_EQ(jint(r.json, "attempts"), attempt);
    CHECK_STR_EQ(jstr(r.json, "error_code"), "E_BOOM");
    CHECK_STR_EQ(jstr(r.json, "error_message"), "boom");
    CHECK_STR_EQ(jstr(r.json, "status"), attempt < 3 ? "pending" : "failed");
    int64_t run_at = ts_parse_time(jstr(r.json, "run_at"));
    if (attempt < 3) {
        /* backoff with equal jitter: base 1 s * 2^(n-1), at least half of it */
        int64_t wait = st_ms_between(r.json, "updated_at", "run_at");
        int64_t full = 1000LL << (attempt - 1);
        CHECK(wait >= full / 2 && wait <= full);
        if (th_failed()) fprintf(stderr, "  attempt %d wait %" PRId64 " ms\n", attempt, wait);
    }
    resp_free(&r);
    return run_at;
}

/* Asserts that nothing is claimable in queue right now. */
static void claim_none(struct st_ctx *c, const char *queue)
{
    struct resp r;
    CHECK_EQ(ts_claim(c->s, c->worker, queue, NULL, &r), 200);
    CHECK_EQ(json_array_size(jpath(r.json, "jobs")), 0);
    resp_free(&r);
}

TEST(fails_three_times_then_failed)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX], lease[TS_ID_MAX], got[TS_ID_MAX];
    st_enq(c.s, c.alice, id, "{\"type\":\"flaky\",\"queue\":\"rq\",\"max_attempts\":3}");
    int64_t prev_run_at = INT64_MIN;
    for (int attempt = 1; attempt <= 3; attempt++) {
        REQUIRE(ts_claim1(c.s, c.worker, "rq", got, lease));
        CHECK_STR_EQ(got, id);
        int64_t run_at = fail_once(&c, id, lease, attempt);
        if (attempt < 3)                          /* the final failure keeps run_at */
            CHECK(run_at > prev_run_at);
        prev_run_at = run_at;
        if (attempt == 3) break;
        claim_none(&c, "rq");                     /* run_at is in the future */
        ts_advance(c.s, 1000LL << (attempt - 1)); /* >= the whole backoff */
    }
    struct resp r;
    CHECK_EQ(ts_get(c.s, c.alice, id, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "failed");
    CHECK_EQ(jint(r.json, "attempts"), 3);
    CHECK(jstr(r.json, "completed_at") != NULL || jis_null(r.json, "completed_at"));
    resp_free(&r);
    ts_advance(c.s, 3600 * 1000);
    claim_none(&c, "rq");
    testsrv_stop(c.s);
}

TEST(non_retryable_failure_fails_at_once)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX], lease[TS_ID_MAX];
    struct resp r;
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"nr\",\"max_attempts\":5}");
    REQUIRE(ts_claim1(c.s, c.worker, "nr", NULL, lease));
    char body[256];
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"error_message\":\"bad input\","
             "\"error_code\":\"E_INPUT\",\"retryable\":false}", lease);
    CHECK_EQ(st_post(c.s, c.worker, id, "fail", body, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "failed");
    CHECK_EQ(jint(r.json, "attempts"), 1);
    CHECK_STR_EQ(jstr(r.json, "error_code"), "E_INPUT");
    resp_free(&r);
    ts_advance(c.s, 3600 * 1000);
    claim_none(&c, "nr");
    testsrv_stop(c.s);
}

/* Every worker verb with a stale lease answers 409 lease_lost. */
static void stale_lease_rejected(struct st_ctx *c, const char *id, const char *lease)
{
    static const char *const fmt[][2] = {
        { "heartbeat", "{\"lease_token\":\"%s\",\"progress_percent\":99}" },
        { "complete", "{\"lease_token\":\"%s\",\"result\":{\"x\":1}}" },
        { "fail", "{\"lease_token\":\"%s\",\"error_message\":\"late\"}" },
        { "logs", "{\"lease_token\":\"%s\",\"level\":\"info\",\"message\":\"late\"}" },
    };
    for (size_t i = 0; i < sizeof fmt / sizeof fmt[0]; i++) {
        struct resp r;
        char body[256];
        snprintf(body, sizeof body, fmt[i][1], lease);
        CHECK_EQ(st_post(c->s, c->worker, id, fmt[i][0], body, &r), 409);
        if (!CHECK_STR_EQ(st_code(&r), "lease_lost")) fprintf(stderr, "  verb %s\n", fmt[i][0]);
        resp_free(&r);
    }
}

TEST(lease_runs_out)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX], lease1[TS_ID_MAX], lease2[TS_ID_MAX];
    struct resp r, before, after;
    st_enq(c.s, c.alice, id, "{\"type\":\"slow\",\"queue\":\"lq\"}");
    claim_one(&c, "lq", "{\"worker_id\":\"w1\",\"lease_ms\":5000}", &r);
    snprintf(lease1, sizeof lease1, "%s", jstr(r.json, "jobs.0.lease_token"));
    resp_free(&r);

    ts_advance(c.s, 4000);                    /* not yet expired */
    CHECK_EQ(ts_get(c.s, c.alice, id, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "processing");
    resp_free(&r);

    ts_advance(c.s, 1001);                    /* past the lease; tick rescues it */
    CHECK_EQ(ts_get(c.s, c.alice, id, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "pending");
    CHECK_STR_EQ(jstr(r.json, "error_code"), "lease_expired");
    CHECK_EQ(jint(r.json, "attempts"), 1);
    resp_free(&r);
    stale_lease_rejected(&c, id, lease1);      /* stale while pending */

    ts_advance(c.s, 1000);                    /* past the first backoff (<= 1 s) */
    claim_one(&c, "lq", "{\"worker_id\":\"w2\",\"lease_ms\":5000}", &r);
    CHECK_STR_EQ(jstr(r.json, "jobs.0.id"), id);
    CHECK_EQ(jint(r.json, "jobs.0.attempts"), 2);
    snprintf(lease2, sizeof lease2, "%s", jstr(r.json, "jobs.0.lease_token"));
    CHECK(strcmp(lease1, lease2) != 0);
    resp_free(&r);

    CHECK_EQ(ts_get(c.s, c.alice, id, &before), 200);
    stale_lease_rejected(&c, id, lease1);      /* stale while processing under lease2 */
    CHECK_EQ(ts_get(c.s, c.alice, id, &after), 200);
    CHECK_STR_EQ(after.body, before.body);    /* the job is unchanged */
    CHECK_STR_EQ(jstr(after.json, "worker_id"), "w2");
    resp_free(&before);
    resp_free(&after);

    char body[128];
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\"}", lease2);
    CHECK_EQ(st_post0(c.s, c.worker, id, "complete", body), 200);
    testsrv_stop(c.s);
}

TEST(lease_runs_out_on_last_attempt)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX], lease[TS_ID_MAX];
    struct resp r;
    st_enq(c.s, c.alice, id, "{\"type\":\"slow\",\"queue\":\"l1\",\"max_attempts\":1}");
    REQUIRE(ts_claim1(c.s, c.worker, "l1", NULL, lease));
    ts_advance(c.s, 30001);                   /* default lease 30 s */
    CHECK_EQ(ts_get(c.s, c.alice, id, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "failed");
    CHECK_STR_EQ(jstr(r.json, "error_code"), "lease_expired");
    CHECK_EQ(jint(r.json, "attempts"), 1);
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST(heartbeat_extends_lease)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX], lease[TS_ID_MAX], body[256];
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"hb\"}");
    struct resp r;
    claim_one(&c, "hb", "{\"worker_id\":\"w1\",\"lease_ms\":5000}", &r);
    snprintf(lease, sizeof lease, "%s", jstr(r.json, "jobs.0.lease_token"));
    resp_free(&r);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"lease_ms\":5000}", lease);
    for (int i = 0; i < 3; i++) {              /* 12 s in total, lease never lapses */
        ts_advance(c.s, 4000);
        CHECK_EQ(st_post0(c.s, c.worker, id, "heartbeat", body), 200);
    }
    char status[32];
    st_field(c.s, c.alice, id, "status", status, sizeof status);
    CHECK_STR_EQ(status, "processing");
    CHECK_EQ(st_int(c.s, c.alice, id, "attempts"), 1);
    testsrv_stop(c.s);
}

/* RFC 3339 with ms and Z out; Z or an offset, with or without fraction, in. */
static void expect_run_at(struct testsrv *s, const char *tok, const char *in, const char *out)
{
    struct resp r;
    char body[160];
    snprintf(body, sizeof body, "{\"type\":\"t\",\"queue\":\"tz\",\"dedup\":false,\"run_at\":\"%s\"}", in);
    CHECK_EQ(ts_req(s, "POST", "/v1/jobs", tok, body, &r), 201);
    if (!CHECK_STR_EQ(jstr(r.json, "run_at"), out)) fprintf(stderr, "  input %s\n", in);
    resp_free(&r);
}

TEST(times_in_and_out)
{
    struct st_ctx c = st_setup();
    struct resp r;
    expect_run_at(c.s, c.alice, "2030-01-01T12:00:00+02:00", "2030-01-01T10:00:00.000Z");
    expect_run_at(c.s, c.alice, "2030-01-01T12:00:00.5Z", "2030-01-01T12:00:00.500Z");
    expect_run_at(c.s, c.alice, "2030-01-01T12:00:00.123-01:30", "2030-01-01T13:30:00.123Z");
    expect_run_at(c.s, c.alice, "2030-06-30T23:59:59Z", "2030-06-30T23:59:59.000Z");
    CHECK_EQ(ts_req(c.s, "POST", "/v1/jobs", c.alice, "{\"type\":\"t\",\"dedup\":false,\"delay_ms\":1500}", &r), 201);
    CHECK_EQ(st_ms_between(r.json, "created_at", "run_at"), 1500);
    const char *ca = jstr(r.json, "created_at");
    CHECK(ca && strlen(ca) == 24 && ca[19] == '.' && ca[23] == 'Z');
    resp_free(&r);
    CHECK_EQ(ts_req(c.s, "POST", "/v1/jobs", c.alice, "{\"type\":\"t\",\"dedup\":false,\"ttl_ms\":60000}", &r), 201);
    CHECK_EQ(st_ms_between(r.json, "created_at", "expires_at"), 60000);
    resp_free(&r);
    CHECK_EQ(ts_req(c.s, "POST", "/v1/jobs", c.alice, "{\"type\":\"t\",\"dedup\":false}", &r), 201);
    CHECK_EQ(st_ms_between(r.json, "created_at", "expires_at"), 24LL * 3600 * 1000);   /* default */
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST_MAIN()
