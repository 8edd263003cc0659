/*
 * test_maint.c - maintenance tasks and admin endpoints (docs/API.md, issue 4): the task
 * list, running a task now (all batches), cleanup of finished jobs past --retention-ms
 * with their logs, the tick doing cleanup when due, expire and rescue. Fake clock only.
 */
#include "srvtest.h"
#include "harness_pg.h"

#include <sqlite3.h>

static const char *const maint_flags[] = {
    "--retention-ms", "60000", "--cleanup-interval-ms", "3600000", "--cleanup-batch", "7", NULL
};

/* The task object named name of GET /v1/admin/maintenance (in r), or NULL. */
static json_t *task(struct resp *r, const char *name)
{
    json_t *a = jpath(r->json, "tasks");
    for (size_t i = 0; i < json_array_size(a); i++)
        if (jstr(json_array_get(a, i), "name") && !strcmp(jstr(json_array_get(a, i), "name"), name))
            return json_array_get(a, i);
    return NULL;
}

TEST(task_list_and_access)
{
    struct testsrv *s = st_start_with(maint_flags);
    const char *u = ts_token(s, "u", "user"), *w = ts_token(s, "w", "worker");
    struct resp r;
    CHECK_EQ(ts_req(s, "GET", "/v1/admin/maintenance", s->admin, NULL, &r), 200);
    const char *names[] = { "rescue", "expire", "cleanup", "idempotency", "stats", NULL };
    for (int i = 0; names[i]; i++) {
        json_t *t = task(&r, names[i]);
        if (!CHECK(t != NULL)) { fprintf(stderr, "  no task %s: %s\n", names[i], r.body); continue; }
        CHECK(jpath(t, "interval_ms") != NULL);
        CHECK(jpath(t, "last_run_at") != NULL);
        CHECK(jpath(t, "last_rows") != NULL);
        CHECK(jpath(t, "last_ms") != NULL);
        CHECK(jint(t, "runs") >= 0);
    }
    CHECK_EQ(jint(task(&r, "cleanup"), "interval_ms"), 3600000);
    CHECK_EQ(jint(task(&r, "idempotency"), "interval_ms"), 600000);
    CHECK_EQ(jint(task(&r, "stats"), "interval_ms"), 600000);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/v1/admin/maintenance", u, NULL, &r), 403);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "GET", "/v1/admin/maintenance", w, NULL, &r), 403);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "POST", "/v1/admin/maintenance/cleanup", u, NULL, &r), 403);
    resp_free(&r);
    CHECK_EQ(ts_req(s, "POST", "/v1/admin/maintenance/nope", s->admin, NULL, &r), 404);
    CHECK_STR_EQ(st_code(&r), "not_found");
    resp_free(&r);
    const char *run[] = { "rescue", "expire", "cleanup", "idempotency", "stats", NULL };
    for (int i = 0; run[i]; i++) {
        char p[128];
        snprintf(p, sizeof p, "/v1/admin/maintenance/%s", run[i]);
        CHECK_EQ(ts_req(s, "POST", p, s->admin, NULL, &r), 200);
        CHECK_STR_EQ(jstr(r.json, "name"), run[i]);
        CHECK_EQ(jint(r.json, "rows"), 0);
        CHECK(jpath(r.json, "ms") != NULL);
        resp_free(&r);
    }
    testsrv_stop(s);
}

TEST(cleanup_deletes_old_finished_jobs_in_batches)
{
    struct testsrv *s = st_start_with(maint_flags);
    const char *u = ts_token_limit(s, "alice", "user", 0);
    const char *w = ts_token(s, "w", "worker");
    char done[TS_ID_MAX], pend[TS_ID_MAX], id[TS_ID_MAX], lease[TS_ID_MAX], b[256];
    struct resp r;
    /* 10 completed (one with a log), 5 cancelled, 2 failed, 3 pending */
    for (int i = 0; i < 20; i++) {
        snprintf(b, sizeof b, "{\"type\":\"t\",\"queue\":\"%s\",\"params\":{\"i\":%d}}",
                 i < 10 ? "done" : i < 15 ? "cx" : i < 17 ? "fl" : "keep", i);
        st_enq(s, u, i < 17 ? id : pend, b);
        if (i >= 10 && i < 15) REQUIRE_EQ(st_post0(s, u, id, "cancel", NULL), 200);
    }
    REQUIRE(ts_claim1(s, w, "done", done, lease));
    snprintf(b, sizeof b, "{\"lease_token\":\"%s\",\"level\":\"info\",\"message\":\"m\"}", lease);
    REQUIRE_EQ(st_post0(s, w, done, "logs", b), 201);
    snprintf(b, sizeof b, "{\"lease_token\":\"%s\"}", lease);
    REQUIRE_EQ(st_post0(s, w, done, "complete", b), 200);
    for (int i = 1; i < 10; i++) st_claim_complete(s, w, "done", NULL, NULL);
    for (int i = 0; i < 2; i++) {
        REQUIRE(ts_claim1(s, w, "fl", id, lease));
        snprintf(b, sizeof b, "{\"lease_token\":\"%s\",\"error_message\":\"x\",\"retryable\":false}",
                 lease);
        REQUIRE_EQ(st_post0(s, w, id, "fail", b), 200);
    }
    /* not old enough yet */
    ts_advance(s, 30000);
    CHECK_EQ(ts_req(s, "POST", "/v1/admin/maintenance/cleanup", s->admin, NULL, &r), 200);
    CHECK_EQ(jint(r.json, "rows"), 0);
    resp_free(&r);
    /* one more completion now: it is younger than the retention at cleanup time */
    st_enq(s, u, id, "{\"type\":\"t\",\"queue\":\"late\"}");
    st_claim_complete(s, w, "late", NULL, id);
    ts_advance(s, 31000);
    CHECK_EQ(ts_req(s, "POST", "/v1/admin/maintenance/cleanup", s->admin, NULL, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "name"), "cleanup");
    CHECK_EQ(jint(r.json, "rows"), 17);               /* all batches of 7, not just one */
    if (th_failed()) fprintf(stderr, "  %s\n", r.body);
    resp_free(&r);
    CHECK_EQ(ts_get(s, u, done, &r), 404);
    resp_free(&r);
    CHECK_EQ(ts_reqf(s, "GET", u, NULL, &r, "/v1/jobs/%s/logs", done), 404);
    resp_free(&r);
    CHECK_EQ(ts_get(s, u, pend, &r), 200);
    resp_free(&r);
    CHECK_EQ(ts_get(s, u, id, &r), 200);             /* the late one stays */
    resp_free(&r);
    CHECK_EQ(st_total(s, u, ""), 4);
    CHECK_EQ(st_total(s, u, "status=pending"), 3);
    CHECK_EQ(st_total(s, u, "status=cancelled"), 0);
    CHECK_EQ(ts_req(s, "GET", "/v1/admin/maintenance", s->admin, NULL, &r), 200);
    json_t *t = task(&r, "cleanup");
    CHECK(jint(t, "runs") >= 2);
    CHECK_EQ(jint(t, "last_rows"), 17);
    CHECK(jstr(t, "last_run_at") != NULL);
    resp_free(&r);
    testsrv_stop(s);
}

static bool gone(struct testsrv *s, const char *token, const char *id)
{
    struct resp r;
    long st = ts_get(s, token, id, &r);
    resp_free(&r);
    return st == 404;
}

/* Rows in job_deps, read from the store itself (no API shows edges of deleted jobs). */
static long dep_rows(struct testsrv *s)
{
    long n = -1;
    if (thpg_enabled()) {
        char *out = NULL;
        if (thpg_psql(s->db, "SELECT count(*) FROM job_deps", &out) == 0 && out)
            n = strtol(out, NULL, 10);
        free(out);
        return n;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (sqlite3_open_v2(s->db, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK
        && sqlite3_prepare_v2(db, "SELECT count(*) FROM job_deps", -1, &st, NULL) == SQLITE_OK
        && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

TEST(cleanup_removes_the_dependency_edges_of_deleted_jobs)
{
    struct testsrv *s = st_start_with(maint_flags);
    const char *u = ts_token(s, "alice", "user"), *w = ts_token(s, "w", "worker");
    char a[TS_ID_MAX], b[TS_ID_MAX], c[TS_ID_MAX], d[TS_ID_MAX], body[256];
    const char *child = "{\"type\":\"t\",\"queue\":\"dq\",\"depends_on\":[\"%s\"]}";
    struct resp r;
    st_enq(s, u, a, "{\"type\":\"t\",\"queue\":\"dq\"}");
    snprintf(body, sizeof body, child, a);
    st_enq(s, u, b, body);
    /* c waits on a parent that stays pending: its edge must survive the cleanup */
    st_enq(s, u, c, "{\"type\":\"t\",\"queue\":\"held\"}");
    snprintf(body, sizeof body, child, c);
    st_enq(s, u, d, body);
    CHECK_EQ(dep_rows(s), 2);
    st_claim_complete(s, w, "dq", NULL, a);
    st_claim_complete(s, w, "dq", NULL, b);
    ts_advance(s, 61000);
    /* (the maintenance tick may have run the cleanup already: rows is 2 or 0) */
    CHECK_EQ(ts_req(s, "POST", "/v1/admin/maintenance/cleanup", s->admin, NULL, &r), 200);
    resp_free(&r);
    CHECK(gone(s, u, a) && gone(s, u, b));
    CHECK_EQ(dep_rows(s), 1);                         /* only the edge of the pending pair */
    testsrv_stop(s);
}

TEST(tick_runs_cleanup_when_due)
{
    const char *extra[] = { "--retention-ms", "60000", "--cleanup-interval-ms", "1000", NULL };
    struct testsrv *s = st_start_with(extra);
    const char *u = ts_token(s, "alice", "user"), *w = ts_token(s, "w", "worker");
    char id[TS_ID_MAX];
    struct resp r;
    st_enq(s, u, id, "{\"type\":\"t\",\"queue\":\"tq\"}");
    st_claim_complete(s, w, "tq", NULL, id);
    ts_advance(s, 59000);
    CHECK_EQ(ts_get(s, u, id, &r), 200);
    resp_free(&r);
    ts_advance(s, 2000);                              /* the clock call runs the tick */
    WAIT_FOR(gone(s, u, id), 5000);
    testsrv_stop(s);
}

TEST(expire_and_rescue_tasks)
{
    struct st_ctx c = st_setup();
    char e[TS_ID_MAX], k[TS_ID_MAX], lease[TS_ID_MAX];
    struct resp r;
    st_enq(c.s, c.alice, e, "{\"type\":\"t\",\"queue\":\"eq\",\"ttl_ms\":1000}");
    st_enq(c.s, c.alice, k, "{\"type\":\"t\",\"queue\":\"rq\",\"max_attempts\":1}");
    REQUIRE(ts_claim1(c.s, c.worker, "rq", NULL, lease));
    ts_advance(c.s, 31000);
    CHECK_EQ(ts_get(c.s, c.alice, e, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "failed");
    CHECK_STR_EQ(jstr(r.json, "error_code"), "expired");
    resp_free(&r);
    CHECK_EQ(ts_get(c.s, c.alice, k, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "failed");
    CHECK_STR_EQ(jstr(r.json, "error_code"), "lease_expired");
    resp_free(&r);
    CHECK_EQ(ts_req(c.s, "GET", "/v1/admin/maintenance", c.s->admin, NULL, &r), 200);
    CHECK(jint(task(&r, "expire"), "runs") >= 1);
    CHECK(jint(task(&r, "rescue"), "runs") >= 1);
    resp_free(&r);
    testsrv_stop(c.s);
}

TEST_MAIN()
