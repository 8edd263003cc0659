/* test_flow.c - schedules, workflows, fair claims and debounce against the
 * real server, with the fake clock (set_ms survives restarts). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "srvtest.h"

static void set_clock(struct testsrv *s, const char *rfc3339)
{
    int64_t ms = ts_parse_time(rfc3339);
    REQUIRE(ms > 0);
    struct resp r;
    char body[64];
    snprintf(body, sizeof body, "{\"set_ms\":%lld}", (long long)ms);
    REQUIRE_EQ(ts_req(s, "POST", "/v1/admin/clock", s->admin, body, &r), 200);
    resp_free(&r);
}

static int64_t jobs_of_type(struct testsrv *s, const char *token, const char *type)
{
    char q[96];
    snprintf(q, sizeof q, "type=%s", type);
    return st_total(s, token, q);
}

static void make_schedule(struct testsrv *s, const char *token, const char *body, char *id)
{
    struct resp r;
    REQUIRE_EQ(ts_req(s, "POST", "/v1/schedules", token, body, &r), 201);
    snprintf(id, TS_ID_MAX, "%s", jstr(r.json, "id"));
    resp_free(&r);
}

TEST(schedule_fires_once_per_time_across_restarts)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *u = ts_token(s, "cronuser", "user");
    char id[TS_ID_MAX];
    set_clock(s, "2030-01-01T00:30:00Z");
    make_schedule(s, u, "{\"name\":\"hourly\",\"cron\":\"0 * * * *\",\"type\":\"tick\"}", id);
    for (int hour = 1; hour <= 10; hour++) {
        char t[40];
        snprintf(t, sizeof t, "2030-01-01T%02d:00:30Z", hour);
        set_clock(s, t);                                 /* the fire time passed: it fires */
        /* PostgreSQL: only the leader runs cron, and a node that just started may take
         * a moment to win the advisory lock */
        WAIT_FOR(jobs_of_type(s, u, "tick") >= hour, 10000);
        CHECK_EQ(jobs_of_type(s, u, "tick"), hour);
        testsrv_restart(s);                              /* and a restart at that time */
        set_clock(s, t);                                 /* must not fire it again */
        struct resp r;
        REQUIRE_EQ(ts_req(s, "POST", "/v1/admin/maintenance/schedules", s->admin, NULL, &r), 200);
        resp_free(&r);
        CHECK_EQ(jobs_of_type(s, u, "tick"), hour);
    }
    struct resp r;
    REQUIRE_EQ(ts_reqf(s, "GET", u, NULL, &r, "/v1/jobs?type=tick&order=asc&limit=1"), 200);
    CHECK_STR_EQ(jstr(r.json, "jobs.0.run_at"), "2030-01-01T01:00:00.000Z");  /* the fire time */
    resp_free(&r);
    testsrv_stop(s);
}

TEST(schedule_dst_rules_in_new_york)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *u = ts_token(s, "dst", "user");
    char a[TS_ID_MAX], b[TS_ID_MAX];
    set_clock(s, "2026-03-07T12:00:00Z");
    make_schedule(s, u, "{\"name\":\"gap\",\"cron\":\"30 2 * * *\",\"timezone\":"
                        "\"America/New_York\",\"type\":\"gap\"}", a);
    struct resp r;
    REQUIRE_EQ(ts_reqf(s, "GET", u, NULL, &r, "/v1/schedules/%s", a), 200);
    CHECK_STR_EQ(jstr(r.json, "next_run_at"), "2026-03-08T07:30:00.000Z");  /* 03:30 EDT */
    resp_free(&r);
    set_clock(s, "2026-03-08T08:00:00Z");
    CHECK_EQ(jobs_of_type(s, u, "gap"), 1);              /* fired once, after the gap */
    REQUIRE_EQ(ts_reqf(s, "GET", u, NULL, &r, "/v1/schedules/%s", a), 200);
    CHECK_STR_EQ(jstr(r.json, "next_run_at"), "2026-03-09T06:30:00.000Z");  /* 02:30 EDT */
    resp_free(&r);
    set_clock(s, "2026-10-31T12:00:00Z");                /* fall back: 01:30 happens twice */
    make_schedule(s, u, "{\"name\":\"twice\",\"cron\":\"30 1 * * *\",\"timezone\":"
                        "\"America/New_York\",\"type\":\"twice\",\"misfire\":\"skip\"}", b);
    set_clock(s, "2026-11-01T05:30:30Z");                /* 01:30:30 EDT */
    CHECK_EQ(jobs_of_type(s, u, "twice"), 1);
    set_clock(s, "2026-11-01T06:30:30Z");                /* 01:30:30 EST: same wall time */
    CHECK_EQ(jobs_of_type(s, u, "twice"), 1);
    REQUIRE_EQ(ts_reqf(s, "GET", u, NULL, &r, "/v1/schedules/%s", b), 200);
    CHECK_STR_EQ(jstr(r.json, "next_run_at"), "2026-11-02T06:30:00.000Z");
    resp_free(&r);
    testsrv_stop(s);
}

TEST(schedule_misfire_pause_and_validation)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *u = ts_token(s, "mf", "user"), *other = ts_token(s, "other", "user");
    char a[TS_ID_MAX], b[TS_ID_MAX];
    set_clock(s, "2030-02-01T00:00:30Z");
    make_schedule(s, u, "{\"name\":\"catch\",\"cron\":\"*/10 * * * *\",\"type\":\"catch\","
                        "\"catch_up_max\":3}", a);
    make_schedule(s, u, "{\"name\":\"skip\",\"cron\":\"*/10 * * * *\",\"type\":\"skip\","
                        "\"misfire\":\"skip\"}", b);
    set_clock(s, "2030-02-01T01:05:00Z");                /* 6 fire times passed while "down" */
    CHECK_EQ(jobs_of_type(s, u, "catch"), 3);            /* the 3 most recent */
    CHECK_EQ(jobs_of_type(s, u, "skip"), 0);             /* none within the grace */
    struct resp r;
    CHECK_EQ(ts_reqf(s, "POST", u, NULL, &r, "/v1/schedules/%s/pause", a), 200);
    CHECK(jbool(r.json, "paused") == 1);
    resp_free(&r);
    set_clock(s, "2030-02-01T01:10:30Z");
    CHECK_EQ(jobs_of_type(s, u, "catch"), 3);            /* paused: nothing */
    CHECK_EQ(jobs_of_type(s, u, "skip"), 1);             /* on time: fires */
    CHECK_EQ(ts_reqf(s, "GET", other, NULL, &r, "/v1/schedules/%s", a), 404);   /* others */
    resp_free(&r);
    CHECK_EQ(ts_req(s, "POST", "/v1/schedules", u, "{\"name\":\"catch\",\"cron\":\"@daily\","
                    "\"type\":\"x\"}", &r), 409);        /* names are unique per user */
    resp_free(&r);
    const char *bad[] = {"{\"name\":\"x\",\"cron\":\"61 * * * *\",\"type\":\"x\"}",
                         "{\"name\":\"x\",\"cron\":\"@daily\",\"type\":\"x\",\"timezone\":\"Nope/Zone\"}",
                         "{\"name\":\"x\",\"cron\":\"0 0 30 2 *\",\"type\":\"x\"}",
                         "{\"name\":\"x\",\"cron\":\"@daily\",\"type\":\"x\",\"misfire\":\"later\"}", NULL};
    const char *fields[] = {"cron", "timezone", "cron", "misfire"};
    for (int i = 0; bad[i]; i++) {
        CHECK_EQ(ts_req(s, "POST", "/v1/schedules", u, bad[i], &r), 400);
        CHECK_STR_EQ(jstr(r.json, "error.field"), fields[i]);
        resp_free(&r);
    }
    CHECK_EQ(ts_reqf(s, "DELETE", u, NULL, &r, "/v1/schedules/%s", b), 204);
    resp_free(&r);
    testsrv_stop(s);
}

/* Claims everything due in queue as the worker, completing each with
 * {"from":key}; returns the keys claimed in that round ("a,b,"). */
static void run_round(struct st_ctx *c, const char *queue, char *keys, size_t cap, bool fail_a)
{
    struct resp r;
    keys[0] = '\0';
    REQUIRE_EQ(ts_reqf(c->s, "POST", c->worker, "{\"worker_id\":\"w\",\"max\":10}", &r,
                       "/v1/queues/%s/claim", queue), 200);
    json_t *jobs = jpath(r.json, "jobs");
    for (size_t i = 0; i < json_array_size(jobs); i++) {
        json_t *j = json_array_get(jobs, i);
        const char *key = jstr(j, "step_key"), *id = jstr(j, "id"), *lease = jstr(j, "lease_token");
        char body[256];
        strncat(keys, key, cap - strlen(keys) - 2);
        strcat(keys, ",");
        if (fail_a && strcmp(key, "a") == 0) {
            snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"error_message\":\"no\","
                     "\"retryable\":false}", lease);
            CHECK_EQ(st_post0(c->s, c->worker, id, "fail", body), 200);
            continue;
        }
        if (strcmp(key, "d") == 0)                       /* d sees both parents' results */
            CHECK_EQ(json_array_size(jpath(j, "parents")), 2);
        snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":{\"from\":\"%s\"}}",
                 lease, key);
        CHECK_EQ(st_post0(c->s, c->worker, id, "complete", body), 200);
    }
    resp_free(&r);
}

static const char *diamond =
    "{\"name\":\"d\",\"steps\":[{\"key\":\"a\",\"type\":\"s\",\"queue\":\"%s\"},"
    "{\"key\":\"b\",\"type\":\"s\",\"queue\":\"%s\",\"depends_on\":[\"a\"]},"
    "{\"key\":\"c\",\"type\":\"s\",\"queue\":\"%s\",\"depends_on\":[\"a\"]},"
    "{\"key\":\"d\",\"type\":\"s\",\"queue\":\"%s\",\"depends_on\":[\"b\",\"c\"]},"
    "{\"key\":\"e\",\"type\":\"s\",\"queue\":\"%s\",\"depends_on\":[\"d\"]}]}";

TEST(workflow_diamond_runs_in_order_and_passes_results)
{
    struct st_ctx c = st_setup();
    char body[1024], wid[TS_ID_MAX], keys[64];
    snprintf(body, sizeof body, diamond, "wf", "wf", "wf", "wf", "wf");
    struct resp r;
    REQUIRE_EQ(ts_req(c.s, "POST", "/v1/workflows", c.alice, body, &r), 201);
    snprintf(wid, sizeof wid, "%s", jstr(r.json, "id"));
    CHECK_EQ(jint(r.json, "steps.3.blocked_by"), 2);
    resp_free(&r);
    const char *want[] = {"a,", "b,c,", "d,", "e,", ""};
    for (int i = 0; i < 5; i++) {
        run_round(&c, "wf", keys, sizeof keys, false);
        if (!CHECK(strcmp(keys, want[i]) == 0 || (i == 1 && strcmp(keys, "c,b,") == 0)))
            fprintf(stderr, "  round %d claimed %s, wanted %s\n", i, keys, want[i]);
    }
    REQUIRE_EQ(ts_reqf(c.s, "GET", c.alice, NULL, &r, "/v1/workflows/%s", wid), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "completed");
    CHECK_STR_EQ(jstr(r.json, "steps.4.result.from"), "e");
    resp_free(&r);
    CHECK_EQ(ts_reqf(c.s, "GET", c.bob, NULL, &r, "/v1/workflows/%s", wid), 404);
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST(workflow_parent_failure_cancels_dependents_and_bad_graphs_are_400)
{
    struct st_ctx c = st_setup();
    char body[1024], wid[TS_ID_MAX], keys[64];
    snprintf(body, sizeof body, diamond, "wff", "wff", "wff", "wff", "wff");
    struct resp r;
    REQUIRE_EQ(ts_req(c.s, "POST", "/v1/workflows", c.alice, body, &r), 201);
    snprintf(wid, sizeof wid, "%s", jstr(r.json, "id"));
    resp_free(&r);
    run_round(&c, "wff", keys, sizeof keys, true);      /* a fails for good */
    run_round(&c, "wff", keys, sizeof keys, false);
    CHECK_STR_EQ(keys, "");                              /* nothing else runs */
    REQUIRE_EQ(ts_reqf(c.s, "GET", c.alice, NULL, &r, "/v1/workflows/%s", wid), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "failed");
    for (int i = 1; i < 5; i++) {
        char p[32];
        snprintf(p, sizeof p, "steps.%d.status", i);
        CHECK_STR_EQ(jstr(r.json, p), "cancelled");      /* b, c, d and e, cascading */
    }
    CHECK_STR_EQ(jstr(r.json, "steps.4.error_code"), "parent_failed");
    resp_free(&r);
    struct { const char *body, *field, *needle; } bad[] = {
        {"{\"steps\":[{\"key\":\"a\",\"type\":\"s\",\"depends_on\":[\"b\"]},"
         "{\"key\":\"b\",\"type\":\"s\",\"depends_on\":[\"a\"]}]}", "steps", "cycle"},
        {"{\"steps\":[{\"key\":\"a\",\"type\":\"s\",\"depends_on\":[\"zz\"]}]}",
         "steps[0].depends_on", "zz"},
        {"{\"steps\":[{\"key\":\"a\",\"type\":\"s\"},{\"key\":\"a\",\"type\":\"s\"}]}",
         "steps[1].key", "duplicate"},
        {"{\"steps\":[]}", "steps", "steps"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_EQ(ts_req(c.s, "POST", "/v1/workflows", c.alice, bad[i].body, &r), 400);
        CHECK_STR_EQ(jstr(r.json, "error.field"), bad[i].field);
        CHECK(jstr(r.json, "error.message") && strstr(jstr(r.json, "error.message"), bad[i].needle));
        resp_free(&r);
    }
    testsrv_stop(c.s);
}

TEST(depends_on_single_jobs_and_run_policy)
{
    struct st_ctx c = st_setup();
    char parent[TS_ID_MAX], child[TS_ID_MAX], body[256], lease[TS_ID_MAX], got[TS_ID_MAX];
    st_enq(c.s, c.alice, parent, "{\"type\":\"p\",\"queue\":\"dp\"}");
    snprintf(body, sizeof body, "{\"type\":\"c\",\"queue\":\"dp\",\"depends_on\":[\"%s\"],"
             "\"on_parent_failure\":\"run\"}", parent);
    struct resp r;
    REQUIRE_EQ(ts_req(c.s, "POST", "/v1/jobs", c.alice, body, &r), 201);
    snprintf(child, sizeof child, "%s", jstr(r.json, "id"));
    CHECK_EQ(jint(r.json, "blocked_by"), 1);
    resp_free(&r);
    REQUIRE(ts_claim1(c.s, c.worker, "dp", got, lease));
    CHECK_STR_EQ(got, parent);                           /* the child waits */
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"error_message\":\"x\","
             "\"retryable\":false}", lease);
    REQUIRE_EQ(st_post0(c.s, c.worker, parent, "fail", body), 200);
    REQUIRE(ts_claim1(c.s, c.worker, "dp", got, lease));
    CHECK_STR_EQ(got, child);                            /* "run": goes on after a failure */
    snprintf(body, sizeof body, "{\"type\":\"c\",\"depends_on\":[\"%s\"]}", child);
    CHECK_EQ(ts_req(c.s, "POST", "/v1/jobs", c.bob, body, &r), 400);   /* not bob's job */
    CHECK_STR_EQ(jstr(r.json, "error.field"), "depends_on");
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST(fair_claims_serve_the_small_user_early)
{
    const char *extra[] = {"--fair-queues", "fair", NULL};
    struct testsrv *s = st_start_with(extra);
    const char *big = ts_token_limit(s, "big", "user", 0), *small = ts_token(s, "small", "user");
    const char *worker = ts_token(s, "w", "worker");
    char batch[120 * 1000], id[TS_ID_MAX];
    for (int b = 0; b < 10; b++) {                       /* 10,000 for big */
        int n = snprintf(batch, sizeof batch, "{\"jobs\":[");
        for (int i = 0; i < 1000; i++)
            n += snprintf(batch + n, sizeof batch - (size_t)n, "%s{\"type\":\"t\",\"queue\":"
                          "\"fair\",\"params\":{\"i\":%d}}", i ? "," : "", b * 1000 + i);
        snprintf(batch + n, sizeof batch - (size_t)n, "]}");
        struct resp r;
        REQUIRE_EQ(ts_req(s, "POST", "/v1/jobs/batch", big, batch, &r), 201);
        resp_free(&r);
    }
    for (int i = 0; i < 10; i++) {                       /* then 10 for small */
        char body[96];
        snprintf(body, sizeof body, "{\"type\":\"t\",\"queue\":\"fair\",\"params\":{\"s\":%d}}", i);
        REQUIRE_EQ(ts_enqueue(s, small, body, id), 201);
    }
    int small_seen = 0;
    for (int i = 0; i < 40; i++) {
        struct resp r;
        REQUIRE_EQ(ts_claim(s, worker, "fair", NULL, &r), 200);
        small_seen += strcmp(jstr(r.json, "jobs.0.user_id"), "small") == 0;
        CHECK(r.statements >= 1 && r.statements <= 3);   /* a round, maybe a wrap, parents:
                                                          * never more, however many users */
        resp_free(&r);
    }
    CHECK_EQ(small_seen, 10);                            /* all 10 within the first 40 */
    testsrv_stop(s);
}

struct claimer { struct testsrv *s; const char *token; int got; };

static void *claim_loop(void *arg)
{
    struct claimer *k = arg;
    struct tsconn *conn = tsconn_new(k->s);
    for (int i = 0; i < 10; i++) {
        struct resp r;
        if (tsconn_req(conn, "POST", "/v1/queues/cap/claim", k->token,
                       "{\"worker_id\":\"w\",\"max\":3}", &r) == 200)
            k->got += (int)json_array_size(jpath(r.json, "jobs"));
        resp_free(&r);
    }
    tsconn_free(conn);
    return NULL;
}

TEST(per_user_processing_cap_under_concurrency)
{
    const char *extra[] = {"--user-processing-max", "2", NULL};
    struct testsrv *s = st_start_with(extra);
    const char *users[] = {"u1", "u2", "u3"};
    const char *worker = ts_token(s, "w", "worker");
    for (int u = 0; u < 3; u++) {
        const char *t = ts_token(s, users[u], "user");
        for (int i = 0; i < 6; i++) {
            char body[96], id[TS_ID_MAX];
            snprintf(body, sizeof body, "{\"type\":\"t\",\"queue\":\"cap\",\"params\":{\"i\":%d}}", i);
            REQUIRE_EQ(ts_enqueue(s, t, body, id), 201);
        }
    }
    pthread_t th[8];
    struct claimer k[8];
    for (int i = 0; i < 8; i++) {
        k[i] = (struct claimer){s, worker, 0};
        pthread_create(&th[i], NULL, claim_loop, &k[i]);
    }
    int total = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        total += k[i].got;
    }
    CHECK_EQ(total, 6);                                  /* 2 for each of the 3 users */
    for (int u = 0; u < 3; u++) {
        char q[64];
        snprintf(q, sizeof q, "status=processing");
        const char *t = ts_token(s, users[u], "user");
        CHECK_EQ(st_total(s, t, q), 2);
    }
    testsrv_stop(s);
}

TEST(debounce_replaces_the_pending_job)
{
    struct st_ctx c = st_setup();
    struct resp r;
    REQUIRE_EQ(ts_req(c.s, "POST", "/v1/jobs", c.alice, "{\"type\":\"sync\",\"unique_key\":"
                      "\"acct-7\",\"params\":{\"v\":1},\"on_conflict\":\"replace\"}", &r), 201);
    char id[TS_ID_MAX];
    snprintf(id, sizeof id, "%s", jstr(r.json, "id"));
    resp_free(&r);
    REQUIRE_EQ(ts_req(c.s, "POST", "/v1/jobs", c.alice, "{\"type\":\"sync\",\"unique_key\":"
                      "\"acct-7\",\"params\":{\"v\":2},\"delay_ms\":5000,\"on_conflict\":"
                      "\"replace\"}", &r), 200);
    CHECK_STR_EQ(jstr(r.json, "id"), id);                /* same job */
    CHECK_EQ(jint(r.json, "params.v"), 2);               /* new params */
    CHECK_EQ(st_ms_between(r.json, "created_at", "run_at"), 5000);   /* new run_at */
    CHECK(jbool(r.json, "deduplicated") == 1);
    resp_free(&r);
    CHECK_EQ(ts_req(c.s, "POST", "/v1/jobs", c.alice, "{\"type\":\"sync\",\"on_conflict\":"
                    "\"replace\"}", &r), 400);           /* replace needs a key */
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST_MAIN()
