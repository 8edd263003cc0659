/*
 * test_groupcommit.c - 32 concurrent creators, each a thread with its own keep-alive
 * connection: every create is acknowledged and stored, and the store's group commit
 * puts more than one write operation into a transaction on average.
 */
#include "srvtest.h"

#include <pthread.h>

enum { N_CONNS = 32, PER_CONN = 40 };

struct creator {
    struct testsrv *s;        /* server */
    const char *token;        /* user token */
    int ok;                   /* out: 201 replies */
    int64_t max_ms;           /* out: slowest create */
};

static void *create_loop(void *arg)
{
    struct creator *k = arg;
    struct tsconn *conn = tsconn_new(k->s);
    char body[160];
    for (int i = 0; i < PER_CONN; i++) {
        struct resp r;
        int64_t t0 = th_now_ms();
        snprintf(body, sizeof body,
                 "{\"type\":\"noop\",\"queue\":\"gc\",\"dedup\":false,\"params\":{\"user_id\":\"user-%05d\",\"seq\":%d}}",
                 i, i);
        k->ok += tsconn_req(conn, "POST", "/v1/jobs", k->token, body, &r) == 201;
        int64_t ms = th_now_ms() - t0;
        if (ms > k->max_ms) k->max_ms = ms;
        resp_free(&r);
    }
    tsconn_free(conn);
    return NULL;
}

TEST(concurrent_creators_share_commits)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *tok = ts_token(s, "gina", "user");
    int64_t ops0, commits0, ops1, commits1;
    REQUIRE_EQ(ts_store_counters(s, &ops0, &commits0), 0);
    struct creator k[N_CONNS];
    pthread_t th[N_CONNS];
    for (int i = 0; i < N_CONNS; i++) {
        k[i] = (struct creator){ .s = s, .token = tok };
        REQUIRE_EQ(pthread_create(&th[i], NULL, create_loop, &k[i]), 0);
    }
    int ok = 0;
    for (int i = 0; i < N_CONNS; i++) {
        pthread_join(th[i], NULL);
        ok += k[i].ok;
    }
    CHECK_EQ(ok, N_CONNS * PER_CONN);
    REQUIRE_EQ(ts_store_counters(s, &ops1, &commits1), 0);
    int64_t dops = ops1 - ops0, dcommits = commits1 - commits0;
    fprintf(stderr, "  group commit: %" PRId64 " ops in %" PRId64 " commits (%.2f per commit)\n",
            dops, dcommits, dcommits ? (double)dops / (double)dcommits : 0.0);
    CHECK(dops >= N_CONNS * PER_CONN);
    CHECK(dcommits >= 1);
    CHECK(dops > dcommits);                    /* > 1 op per commit on average */
    struct resp r;
    CHECK_EQ(ts_req(s, "GET", "/v1/jobs?queue=gc&limit=1", tok, NULL, &r), 200);
    CHECK_EQ(jint(r.json, "total_count"), N_CONNS * PER_CONN);
    resp_free(&r);
    testsrv_stop(s);
}

TEST(store_counters_shape)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *tok = ts_token(s, "hal", "user");
    int64_t ops0, commits0, ops1, commits1;
    REQUIRE_EQ(ts_store_counters(s, &ops0, &commits0), 0);
    CHECK(ops0 >= 0 && commits0 >= 0);
    char id[TS_ID_MAX];
    st_enq(s, tok, id, "{\"type\":\"t\"}");
    REQUIRE_EQ(ts_store_counters(s, &ops1, &commits1), 0);
    CHECK(ops1 > ops0);                        /* a create is a write operation */
    CHECK(commits1 > commits0);                /* and it was committed before the 201 */
    testsrv_stop(s);
}

TEST_MAIN()
