/*
 * test_durability.c - an acknowledged create survives kill -9: 1,000 creates, SIGKILL
 * right after the last reply, restart on the same database, every job is there.
 * Also: a clean SIGTERM restart keeps jobs, tokens and the state of a lease.
 */
#include "srvtest.h"

#include <pthread.h>
#include <stdlib.h>

enum { N_JOBS = 1000, N_THREADS = 4 };

struct creator {
    struct testsrv *s;        /* server */
    const char *token;        /* user token */
    int n;                    /* jobs to create */
    char (*ids)[TS_ID_MAX];   /* out: ids of acknowledged creates */
    int ok;                   /* out: 201 replies */
};

static void *create_many(void *arg)
{
    struct creator *k = arg;
    struct tsconn *conn = tsconn_new(k->s);
    char body[128];
    for (int i = 0; i < k->n; i++) {
        struct resp r;
        snprintf(body, sizeof body, "{\"type\":\"durable\",\"dedup\":false,\"params\":{\"seq\":%d}}", i);
        if (tsconn_req(conn, "POST", "/v1/jobs", k->token, body, &r) == 201 && jstr(r.json, "id"))
            snprintf(k->ids[k->ok++], TS_ID_MAX, "%s", jstr(r.json, "id"));
        resp_free(&r);
    }
    tsconn_free(conn);
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Creates N_JOBS over N_THREADS connections; returns the acknowledged count. */
static int create_all(struct testsrv *s, const char *tok, char (*ids)[TS_ID_MAX])
{
    struct creator k[N_THREADS];
    pthread_t th[N_THREADS];
    int total = 0;
    for (int i = 0; i < N_THREADS; i++) {
        k[i] = (struct creator){ s, tok, N_JOBS / N_THREADS, ids + i * (N_JOBS / N_THREADS), 0 };
        REQUIRE_EQ(pthread_create(&th[i], NULL, create_many, &k[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) {
        pthread_join(th[i], NULL);
        total += k[i].ok;
    }
    return total;
}

/* Lists every job as admin (one page of 1000) and CHECKs the ids equal want (sorted). */
static void check_all_there(struct testsrv *s, char (*want)[TS_ID_MAX], int n)
{
    struct resp r;
    CHECK_EQ(ts_req(s, "GET", "/v1/jobs?limit=1000", s->admin, NULL, &r), 200);
    CHECK_EQ(jint(r.json, "total_count"), n);
    json_t *jobs = jpath(r.json, "jobs");
    REQUIRE_EQ(json_array_size(jobs), n);
    char (*got)[TS_ID_MAX] = calloc((size_t)n, TS_ID_MAX);
    for (int i = 0; i < n; i++)
        snprintf(got[i], TS_ID_MAX, "%s", jstr(json_array_get(jobs, (size_t)i), "id") ?
                 jstr(json_array_get(jobs, (size_t)i), "id") : "");
    qsort(got, (size_t)n, TS_ID_MAX, cmp_id);
    int same = 0;
    for (int i = 0; i < n; i++) same += !strcmp(got[i], want[i]);
    CHECK_EQ(same, n);
    free(got);
    resp_free(&r);
}

static void kill9_after_creates(const char *sync)
{
    struct testsrv_opts o = { .sync = sync };
    struct testsrv *s = testsrv_start(&o);
    const char *tok = ts_token(s, "dora", "user");
    char (*ids)[TS_ID_MAX] = calloc(N_JOBS, TS_ID_MAX);
    REQUIRE_EQ(create_all(s, tok, ids), N_JOBS);
    testsrv_kill9(s);                          /* no chance to flush anything */
    testsrv_restart(s);
    qsort(ids, N_JOBS, TS_ID_MAX, cmp_id);
    check_all_there(s, ids, N_JOBS);
    struct resp r;                             /* spot-check single reads, as the owner */
    for (int i = 0; i < N_JOBS; i += 97) {
        CHECK_EQ(ts_get(s, tok, ids[i], &r), 200);
        CHECK_STR_EQ(jstr(r.json, "status"), "pending");
        resp_free(&r);
    }
    free(ids);
    testsrv_stop(s);
}

TEST(kill9_after_1000_creates_default_sync)
{
    kill9_after_creates(NULL);
}

TEST(kill9_after_1000_creates_sync_full)
{
    kill9_after_creates("full");
}

TEST(kill9_after_1000_creates_sync_normal)
{
    kill9_after_creates("normal");   /* WAL + normal survives a process crash */
}

TEST(sigterm_restart_keeps_state)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX], lease[TS_ID_MAX], body[256];
    struct resp before, after;
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"rs\",\"params\":{\"a\":[1,2,3]}}");
    REQUIRE(ts_claim1(c.s, c.worker, "rs", NULL, lease));
    CHECK_EQ(ts_get(c.s, c.alice, id, &before), 200);
    testsrv_restart(c.s);                      /* SIGTERM, must exit 0, same db */
    CHECK_EQ(ts_get(c.s, c.alice, id, &after), 200);   /* tokens survive too */
    CHECK_STR_EQ(jstr(after.json, "status"), "processing");
    CHECK_STR_EQ(jstr(after.json, "lease_expires_at"), jstr(before.json, "lease_expires_at"));
    CHECK_EQ(jint(after.json, "params.a.2"), 3);
    resp_free(&before);
    resp_free(&after);
    snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":\"done\"}", lease);
    CHECK_EQ(st_post0(c.s, c.worker, id, "complete", body), 200);   /* the lease survives */
    testsrv_kill9(c.s);
    testsrv_restart(c.s);
    char status[32];
    st_field(c.s, c.alice, id, "status", status, sizeof status);
    CHECK_STR_EQ(status, "completed");
    testsrv_stop(c.s);
}

TEST_MAIN()
