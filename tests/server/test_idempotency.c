/*
 * test_idempotency.c - Idempotency-Key (docs/API.md, issue 4): the same key, method, path
 * and body within 24 h replays the first 2xx reply (same status and body, plus
 * Idempotent-Replayed: true); another request under the key → 422 idempotency_conflict;
 * error replies are not stored; keys are per user; claims and tokens are not idempotent.
 */
#include "srvtest.h"

/* POST path as token with Idempotency-Key: key (NULL = no key). */
static long post_key(struct testsrv *s, const char *token, const char *key, const char *path,
                     const char *body, struct resp *out)
{
    char h[512];
    const char *hs[2] = { h, NULL };
    snprintf(h, sizeof h, "Idempotency-Key: %s", key ? key : "");
    struct ts_http rq = { .method = "POST", .path = path, .token = token, .body = body,
                          .headers = key ? hs : NULL };
    return ts_do(s, &rq, out);
}

/* CHECKs that b replays a: same status, same body, header set; a is the original. */
static void check_replay(struct resp *a, struct resp *b)
{
    bool ok = CHECK_EQ(b->status, a->status);
    ok &= CHECK_STR_EQ(b->body, a->body);
    ok &= CHECK_STR_EQ(b->replayed, "true");
    ok &= CHECK_STR_EQ(a->replayed, "");
    if (!ok) fprintf(stderr, "  first:  %ld %s\n  replay: %ld [%s] %s\n", a->status, a->body,
                     b->status, b->replayed, b->body);
}

TEST(create_replays_first_reply)
{
    struct st_ctx c = st_setup();
    struct resp a, b;
    /* dedup:false, so only the key can answer with the same job */
    const char *body = "{\"type\":\"t\",\"params\":{\"x\":1},\"dedup\":false}";
    CHECK_EQ(post_key(c.s, c.alice, "k-1", "/v1/jobs", body, &a), 201);
    CHECK_EQ(post_key(c.s, c.alice, "k-1", "/v1/jobs", body, &b), 201);
    check_replay(&a, &b);
    resp_free(&b);
    ts_advance(c.s, 23LL * 3600 * 1000);                 /* still within 24 h */
    CHECK_EQ(post_key(c.s, c.alice, "k-1", "/v1/jobs", body, &b), 201);
    check_replay(&a, &b);
    resp_free(&b);
    CHECK_EQ(st_total(c.s, c.alice, ""), 1);
    /* no key → a new job */
    CHECK_EQ(post_key(c.s, c.alice, NULL, "/v1/jobs", body, &b), 201);
    CHECK(strcmp(jstr(b.json, "id"), jstr(a.json, "id")) != 0);
    resp_free(&b);
    /* keys are per user: bob's k-1 is his own */
    CHECK_EQ(post_key(c.s, c.bob, "k-1", "/v1/jobs", body, &b), 201);
    CHECK_STR_EQ(b.replayed, "");
    CHECK_STR_EQ(jstr(b.json, "user_id"), "bob");
    CHECK(strcmp(jstr(b.json, "id"), jstr(a.json, "id")) != 0);
    resp_free(&b);
    resp_free(&a);
    testsrv_stop(c.s);
}

TEST(same_key_other_request_conflicts)
{
    struct st_ctx c = st_setup();
    struct resp a, b;
    CHECK_EQ(post_key(c.s, c.alice, "k-2", "/v1/jobs", "{\"type\":\"t\"}", &a), 201);
    CHECK_EQ(post_key(c.s, c.alice, "k-2", "/v1/jobs", "{\"type\":\"u\"}", &b), 422);
    CHECK_STR_EQ(st_code(&b), "idempotency_conflict");
    resp_free(&b);
    CHECK_EQ(post_key(c.s, c.alice, "k-2", "/v1/jobs/batch", "{\"jobs\":[{\"type\":\"t\"}]}", &b),
             422);
    CHECK_STR_EQ(st_code(&b), "idempotency_conflict");
    resp_free(&b);
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", jstr(a.json, "id"));
    CHECK_EQ(post_key(c.s, c.alice, "k-2", path, NULL, &b), 422);
    resp_free(&b);
    /* the job was not cancelled by the conflicting request */
    CHECK_EQ(ts_get(c.s, c.alice, jstr(a.json, "id"), &b), 200);
    CHECK_STR_EQ(jstr(b.json, "status"), "pending");
    resp_free(&b);
    CHECK_EQ(st_total(c.s, c.alice, ""), 1);
    resp_free(&a);
    testsrv_stop(c.s);
}

TEST(errors_are_not_stored)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *u = ts_token_limit(s, "lim", "user", 1);
    struct resp a, b;
    char first[TS_ID_MAX];
    st_enq(s, u, first, "{\"type\":\"t\",\"params\":{\"n\":0}}");
    const char *body = "{\"type\":\"t\",\"params\":{\"n\":1}}";
    CHECK_EQ(post_key(s, u, "k-3", "/v1/jobs", body, &a), 429);        /* over the limit */
    resp_free(&a);
    CHECK_EQ(post_key(s, u, "k-3", "/v1/jobs", body, &a), 429);        /* runs again */
    CHECK_STR_EQ(a.replayed, "");
    resp_free(&a);
    REQUIRE_EQ(st_post0(s, u, first, "cancel", NULL), 200);
    CHECK_EQ(post_key(s, u, "k-3", "/v1/jobs", body, &a), 201);        /* now it succeeds */
    CHECK_STR_EQ(a.replayed, "");
    CHECK_EQ(post_key(s, u, "k-3", "/v1/jobs", body, &b), 201);
    check_replay(&a, &b);
    resp_free(&a);
    resp_free(&b);
    /* a 400 is not stored either */
    CHECK_EQ(post_key(s, u, "k-4", "/v1/jobs", "{\"type\":\"t\",\"priority\":5000}", &a), 400);
    resp_free(&a);
    CHECK_EQ(post_key(s, u, "k-4", "/v1/jobs", "{\"type\":\"t\",\"priority\":5000}", &a), 400);
    CHECK_STR_EQ(a.replayed, "");
    resp_free(&a);
    testsrv_stop(s);
}

TEST(key_expires_after_24h)
{
    struct st_ctx c = st_setup();
    struct resp a, b;
    const char *body = "{\"type\":\"t\",\"dedup\":false,\"ttl_ms\":2592000000}";
    CHECK_EQ(post_key(c.s, c.alice, "k-5", "/v1/jobs", body, &a), 201);
    ts_advance(c.s, 24LL * 3600 * 1000 + 60000);
    CHECK_EQ(post_key(c.s, c.alice, "k-5", "/v1/jobs", body, &b), 201);
    CHECK_STR_EQ(b.replayed, "");
    CHECK(jstr(b.json, "id") && strcmp(jstr(b.json, "id"), jstr(a.json, "id")) != 0);
    resp_free(&b);
    /* the idempotency task forgets old records; the new one (just written) stays */
    ts_advance(c.s, 24LL * 3600 * 1000 + 60000);
    CHECK_EQ(ts_req(c.s, "POST", "/v1/admin/maintenance/idempotency", c.s->admin, NULL, &b), 200);
    CHECK_STR_EQ(jstr(b.json, "name"), "idempotency");
    CHECK(jint(b.json, "rows") >= 0);
    resp_free(&b);
    CHECK_EQ(post_key(c.s, c.alice, "k-5", "/v1/jobs", body, &b), 201);
    CHECK_STR_EQ(b.replayed, "");
    resp_free(&b);
    resp_free(&a);
    testsrv_stop(c.s);
}

TEST(key_is_validated)
{
    struct st_ctx c = st_setup();
    struct resp r;
    char key[300];
    memset(key, 'k', 256);
    key[256] = '\0';
    CHECK_EQ(post_key(c.s, c.alice, key, "/v1/jobs", "{\"type\":\"t\"}", &r), 400);
    CHECK_STR_EQ(st_code(&r), "invalid_argument");
    CHECK_STR_EQ(jstr(r.json, "error.field"), "Idempotency-Key");
    resp_free(&r);
    CHECK_EQ(post_key(c.s, c.alice, "caf\xc3\xa9", "/v1/jobs", "{\"type\":\"t\"}", &r), 400);
    CHECK_STR_EQ(jstr(r.json, "error.field"), "Idempotency-Key");
    resp_free(&r);
    CHECK_EQ(st_total(c.s, c.alice, ""), 0);
    key[255] = '\0';
    CHECK_EQ(post_key(c.s, c.alice, key, "/v1/jobs", "{\"type\":\"t\"}", &r), 201);
    resp_free(&r);
    CHECK_EQ(post_key(c.s, c.alice, "a~!{}\"'", "/v1/jobs", "{\"type\":\"t2\"}", &r), 201);
    resp_free(&r);
    /* SP (0x20) is printable ASCII too */
    CHECK_EQ(post_key(c.s, c.alice, "a b", "/v1/jobs", "{\"type\":\"t3\"}", &r), 201);
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST(cancel_and_complete_replay_tokens_do_not)
{
    struct st_ctx c = st_setup();
    struct resp a, b;
    char id[TS_ID_MAX], lease[TS_ID_MAX], path[128], body[256];
    /* cancel: without the key a second cancel is 409; with it, a replay */
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"iq\",\"params\":{\"c\":1}}");
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
    CHECK_EQ(post_key(c.s, c.alice, "c-1", path, NULL, &a), 200);
    CHECK_EQ(post_key(c.s, c.alice, "c-1", path, NULL, &b), 200);
    check_replay(&a, &b);
    resp_free(&a);
    resp_free(&b);
    CHECK_EQ(post_key(c.s, c.alice, NULL, path, NULL, &b), 409);
    resp_free(&b);
    /* complete: a lost reply retried with the key is 200, not 409 lease_lost */
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"iq\",\"params\":{\"c\":2}}");
    REQUIRE(ts_claim1(c.s, c.worker, "iq", id, lease));
    snprintf(path, sizeof path, "/v1/jobs/%s/complete", id);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":{\"ok\":1}}", lease);
    CHECK_EQ(post_key(c.s, c.worker, "done-1", path, body, &a), 200);
    CHECK_EQ(post_key(c.s, c.worker, "done-1", path, body, &b), 200);
    check_replay(&a, &b);
    resp_free(&a);
    resp_free(&b);
    /* tokens are not idempotent (the reply holds a secret that must not be stored) */
    const char *tb = "{\"user_id\":\"carol\",\"role\":\"user\",\"name\":\"ci\"}";
    CHECK_EQ(post_key(c.s, c.s->admin, "tok-1", "/v1/tokens", tb, &a), 201);
    CHECK_EQ(post_key(c.s, c.s->admin, "tok-1", "/v1/tokens", tb, &b), 201);
    CHECK_STR_EQ(b.replayed, "");
    CHECK(jstr(a.json, "id") && jstr(b.json, "id") && strcmp(jstr(a.json, "id"), jstr(b.json, "id")));
    resp_free(&a);
    resp_free(&b);
    testsrv_stop(c.s);
}

TEST(batch_replays_and_claims_do_not)
{
    struct st_ctx c = st_setup();
    struct resp a, b;
    const char *batch = "{\"jobs\":[{\"type\":\"b\",\"queue\":\"bq\"},{\"type\":\"b\",\"queue\":\"bq\"}]}";
    CHECK_EQ(post_key(c.s, c.alice, "b-1", "/v1/jobs/batch", batch, &a), 201);
    CHECK_EQ(post_key(c.s, c.alice, "b-1", "/v1/jobs/batch", batch, &b), 201);
    check_replay(&a, &b);
    resp_free(&a);
    resp_free(&b);
    CHECK_EQ(st_total(c.s, c.alice, ""), 2);
    /* claims are not idempotent: the second claim takes the other job */
    const char *cb = "{\"worker_id\":\"w1\"}";
    CHECK_EQ(post_key(c.s, c.worker, "cl-1", "/v1/queues/bq/claim", cb, &a), 200);
    CHECK_EQ(post_key(c.s, c.worker, "cl-1", "/v1/queues/bq/claim", cb, &b), 200);
    CHECK_STR_EQ(b.replayed, "");
    REQUIRE(jstr(a.json, "jobs.0.id") && jstr(b.json, "jobs.0.id"));
    CHECK(strcmp(jstr(a.json, "jobs.0.id"), jstr(b.json, "jobs.0.id")) != 0);
    resp_free(&a);
    resp_free(&b);
    testsrv_stop(c.s);
}

TEST(concurrent_same_key_makes_one_job)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *u = ts_token_limit(s, "racer", "user", 0);
    enum { N = 16 };
    const char *toks[N], *bodies[N];
    struct resp out[N];
    for (int i = 0; i < N; i++) {
        toks[i] = u;
        bodies[i] = "{\"type\":\"t\",\"dedup\":false}";
    }
    st_parallel_post_h(s, N, "/v1/jobs", toks, bodies, "Idempotency-Key: race-1", out);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        if (out[i].status == 201 && jstr(out[i].json, "id") &&
            !strcmp(jstr(out[i].json, "id"), jstr(out[0].json, "id")))
            ok++;
        else
            fprintf(stderr, "  [%d] -> %ld %s\n", i, out[i].status, out[i].body);
    }
    CHECK_EQ(ok, N);
    for (int i = 0; i < N; i++) resp_free(&out[i]);
    CHECK_EQ(st_total(s, u, ""), 1);
    testsrv_stop(s);
}

/* A worker whose reply was lost retries with the key: no second log, no second failure. */
TEST(logs_heartbeat_fail_retry_replay)
{
    struct st_ctx c = st_setup();
    struct resp a, b;
    char id[TS_ID_MAX], lease[TS_ID_MAX], path[128], body[256];
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"wq\",\"max_attempts\":1}");
    REQUIRE(ts_claim1(c.s, c.worker, "wq", id, lease));
    snprintf(path, sizeof path, "/v1/jobs/%s/logs", id);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"level\":\"info\",\"message\":\"once\"}",
             lease);
    CHECK_EQ(post_key(c.s, c.worker, "log-1", path, body, &a), 201);
    CHECK_EQ(post_key(c.s, c.worker, "log-1", path, body, &b), 201);
    check_replay(&a, &b);
    resp_free(&a);
    resp_free(&b);
    CHECK_EQ(ts_reqf(c.s, "GET", c.alice, NULL, &a, "/v1/jobs/%s/logs", id), 200);
    CHECK_EQ(json_array_size(jpath(a.json, "logs")), 1);
    resp_free(&a);
    snprintf(path, sizeof path, "/v1/jobs/%s/heartbeat", id);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"progress_percent\":40}", lease);
    CHECK_EQ(post_key(c.s, c.worker, "hb-1", path, body, &a), 200);
    CHECK_EQ(post_key(c.s, c.worker, "hb-1", path, body, &b), 200);
    check_replay(&a, &b);
    resp_free(&a);
    resp_free(&b);
    snprintf(path, sizeof path, "/v1/jobs/%s/fail", id);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"error_message\":\"boom\"}", lease);
    CHECK_EQ(post_key(c.s, c.worker, "fail-1", path, body, &a), 200);
    CHECK_STR_EQ(jstr(a.json, "status"), "failed");
    CHECK_EQ(post_key(c.s, c.worker, "fail-1", path, body, &b), 200);      /* not 409 */
    check_replay(&a, &b);
    resp_free(&a);
    resp_free(&b);
    snprintf(path, sizeof path, "/v1/jobs/%s/retry", id);
    CHECK_EQ(post_key(c.s, c.alice, "retry-1", path, NULL, &a), 200);
    CHECK_STR_EQ(jstr(a.json, "status"), "pending");
    CHECK_EQ(post_key(c.s, c.alice, "retry-1", path, NULL, &b), 200);      /* not 409 */
    check_replay(&a, &b);
    resp_free(&a);
    resp_free(&b);
    CHECK_EQ(st_int(c.s, c.alice, id, "attempts"), 0);
    testsrv_stop(c.s);
}

TEST_MAIN()
