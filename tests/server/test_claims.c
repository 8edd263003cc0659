/*
 * test_claims.c - which job a claim hands out: priority DESC, run_at, id; jobs due in
 * the future wait for the (fake) clock; max > 1; queues are separate; long-poll claims
 * wake when a job is committed.
 */
#include "srvtest.h"

#include <pthread.h>

/* Formats an RFC 3339 UTC time with milliseconds. */
static void fmt_time(int64_t ms, char *out, size_t cap)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03dZ", (int)(ms % 1000));
}

/* The server's "now": created_at of a fresh job in a scratch queue. */
static int64_t server_now(struct st_ctx *c)
{
    struct resp r;
    REQUIRE_EQ(ts_req(c->s, "POST", "/v1/jobs", c->alice, "{\"type\":\"clock\",\"queue\":\"scratch\"}",
                      &r), 201);
    int64_t now = ts_parse_time(jstr(r.json, "created_at"));
    resp_free(&r);
    return now;
}

/* Claims one job of queue and CHECKs it is want (or that none is left when want is NULL). */
static void expect_next(struct st_ctx *c, const char *queue, const char *want)
{
    struct resp r;
    CHECK_EQ(ts_claim(c->s, c->worker, queue, NULL, &r), 200);
    const char *got = jstr(r.json, "jobs.0.id");
    CHECK_EQ(json_array_size(jpath(r.json, "jobs")), want ? 1 : 0);
    if (want) CHECK_STR_EQ(got, want);
    resp_free(&r);
}

TEST(claim_order_priority_run_at_id)
{
    struct st_ctx c = st_setup();
    char p10a[TS_ID_MAX], p10b[TS_ID_MAX], p10old[TS_ID_MAX], p1new[TS_ID_MAX], p1old[TS_ID_MAX];
    char p0[TS_ID_MAX], neg[TS_ID_MAX], fut[TS_ID_MAX], body[256], t1[64], t2[64];
    int64_t now = server_now(&c);
    fmt_time(now - 5000, t1, sizeof t1);
    fmt_time(now - 20000, t2, sizeof t2);
    st_enq(c.s, c.alice, neg, "{\"type\":\"t\",\"queue\":\"ord\",\"priority\":-5}");
    st_enq(c.s, c.alice, p0, "{\"type\":\"t\",\"queue\":\"ord\"}");
    st_enq(c.s, c.alice, fut, "{\"type\":\"t\",\"queue\":\"ord\",\"priority\":1000,\"delay_ms\":60000}");
    st_enq(c.s, c.alice, p10a, "{\"type\":\"t\",\"queue\":\"ord\",\"priority\":10}");
    st_enq(c.s, c.bob, p10b, "{\"type\":\"t\",\"queue\":\"ord\",\"priority\":10}");
    snprintf(body, sizeof body, "{\"type\":\"t\",\"queue\":\"ord\",\"priority\":10,\"run_at\":\"%s\"}", t1);
    st_enq(c.s, c.alice, p10old, body);
    st_enq(c.s, c.alice, p1new, "{\"type\":\"t\",\"queue\":\"ord\",\"priority\":1}");
    snprintf(body, sizeof body, "{\"type\":\"t\",\"queue\":\"ord\",\"priority\":1,\"run_at\":\"%s\"}", t2);
    st_enq(c.s, c.alice, p1old, body);

    bool a_first = strcmp(p10a, p10b) < 0;    /* same priority and run_at: id decides */
    expect_next(&c, "ord", p10old);
    expect_next(&c, "ord", a_first ? p10a : p10b);
    expect_next(&c, "ord", a_first ? p10b : p10a);
    expect_next(&c, "ord", p1old);
    expect_next(&c, "ord", p1new);
    expect_next(&c, "ord", p0);
    expect_next(&c, "ord", neg);
    expect_next(&c, "ord", NULL);             /* fut is not due yet */
    ts_advance(c.s, 59999);
    expect_next(&c, "ord", NULL);
    ts_advance(c.s, 1);
    expect_next(&c, "ord", fut);
    testsrv_stop(c.s);
}

TEST(future_run_at_waits_for_clock)
{
    struct st_ctx c = st_setup();
    char id[TS_ID_MAX], body[256], t[64];
    int64_t now = server_now(&c);
    fmt_time(now + 120000, t, sizeof t);
    snprintf(body, sizeof body, "{\"type\":\"t\",\"queue\":\"fut\",\"run_at\":\"%s\"}", t);
    st_enq(c.s, c.alice, id, body);
    expect_next(&c, "fut", NULL);
    ts_advance(c.s, 60000);
    expect_next(&c, "fut", NULL);
    ts_advance(c.s, 60000);
    expect_next(&c, "fut", id);
    testsrv_stop(c.s);
}

TEST(claim_max_and_queues)
{
    struct st_ctx c = st_setup();
    char ids[5][TS_ID_MAX], other[TS_ID_MAX];
    struct resp r;
    for (int i = 0; i < 5; i++) st_enq(c.s, c.alice, ids[i], "{\"type\":\"t\",\"queue\":\"multi\"}");
    st_enq(c.s, c.alice, other, "{\"type\":\"t\",\"queue\":\"other\"}");
    CHECK_EQ(ts_claim(c.s, c.worker, "multi", "{\"worker_id\":\"w\",\"max\":3}", &r), 200);
    CHECK_EQ(json_array_size(jpath(r.json, "jobs")), 3);
    CHECK(strcmp(jstr(r.json, "jobs.0.lease_token") ? jstr(r.json, "jobs.0.lease_token") : "",
                 jstr(r.json, "jobs.1.lease_token") ? jstr(r.json, "jobs.1.lease_token") : "") != 0);
    for (size_t i = 0; i < json_array_size(jpath(r.json, "jobs")); i++) {
        json_t *j = json_array_get(jpath(r.json, "jobs"), i);
        CHECK_STR_EQ(jstr(j, "status"), "processing");
        CHECK_STR_EQ(jstr(j, "queue"), "multi");
    }
    resp_free(&r);
    CHECK_EQ(ts_claim(c.s, c.worker, "multi", "{\"worker_id\":\"w\",\"max\":10}", &r), 200);
    CHECK_EQ(json_array_size(jpath(r.json, "jobs")), 2);
    resp_free(&r);
    expect_next(&c, "multi", NULL);
    expect_next(&c, "other", other);
    testsrv_stop(c.s);
}

/* A long-poll claim run on its own connection in a thread. */
struct lp {
    struct testsrv *s;        /* server */
    const char *worker;       /* worker token */
    const char *body;         /* claim body */
    const char *queue;        /* NULL: "lp" */
    struct resp r;            /* reply */
    int64_t ms;               /* how long the claim took */
    volatile int started;     /* set just before the request goes out */
};

static void *lp_run(void *arg)
{
    struct lp *lp = arg;
    struct tsconn *conn = tsconn_new(lp->s);
    __atomic_store_n(&lp->started, 1, __ATOMIC_SEQ_CST);
    int64_t t0 = th_now_ms();
    char path[128];
    snprintf(path, sizeof path, "/v1/queues/%s/claim", lp->queue ? lp->queue : "lp");
    tsconn_req(conn, "POST", path, lp->worker, lp->body, &lp->r);
    lp->ms = th_now_ms() - t0;
    tsconn_free(conn);
    return NULL;
}

static bool lp_started(void *arg)
{
    return __atomic_load_n(&((struct lp *)arg)->started, __ATOMIC_SEQ_CST) != 0;
}

/* Never true: poll_until used as a bounded real-time pause. */
static bool never(void *arg)
{
    (void)arg;
    return false;
}

TEST(long_poll_claim_woken_by_enqueue)
{
    struct st_ctx c = st_setup();
    struct lp lp = { .s = c.s, .worker = c.worker,
                     .body = "{\"worker_id\":\"lp\",\"wait_ms\":20000}" };
    char id[TS_ID_MAX];
    pthread_t th;
    REQUIRE_EQ(pthread_create(&th, NULL, lp_run, &lp), 0);
    REQUIRE(poll_until(lp_started, &lp, 5000));
    /* Let the claim park on the server. Correctness does not depend on this pause:
     * if the enqueue wins the race the claim still must return the job at once. */
    poll_until(never, NULL, 300);
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"lp\"}");
    pthread_join(th, NULL);
    CHECK_EQ(lp.r.status, 200);
    CHECK_EQ(json_array_size(jpath(lp.r.json, "jobs")), 1);
    CHECK_STR_EQ(jstr(lp.r.json, "jobs.0.id"), id);
    CHECK(lp.ms < 5000);                      /* well before wait_ms (20 s) ran out */
    if (th_failed()) fprintf(stderr, "  long-poll took %" PRId64 " ms\n", lp.ms);
    resp_free(&lp.r);
    testsrv_stop(c.s);
}

TEST(long_poll_claim_times_out_empty)
{
    struct st_ctx c = st_setup();
    struct lp lp = { .s = c.s, .worker = c.worker,
                     .body = "{\"worker_id\":\"lp\",\"wait_ms\":300}" };
    lp_run(&lp);
    CHECK_EQ(lp.r.status, 200);
    CHECK_EQ(json_array_size(jpath(lp.r.json, "jobs")), 0);
    CHECK(lp.ms >= 250);
    CHECK(lp.ms < 10000);
    if (th_failed()) fprintf(stderr, "  empty long-poll took %" PRId64 " ms\n", lp.ms);
    resp_free(&lp.r);
    testsrv_stop(c.s);
}

TEST(sigterm_ends_a_parked_long_poll)
{
    struct st_ctx c = st_setup();
    struct lp lp = { .s = c.s, .worker = c.worker,
                     .body = "{\"worker_id\":\"lp\",\"wait_ms\":30000}" };
    pthread_t th;
    REQUIRE_EQ(pthread_create(&th, NULL, lp_run, &lp), 0);
    REQUIRE(poll_until(lp_started, &lp, 5000));
    poll_until(never, NULL, 300);             /* let it park (see above) */
    int64_t t0 = th_now_ms();
    CHECK_EQ(testsrv_term(c.s), 0);           /* clean exit, not stuck on the waiter */
    pthread_join(th, NULL);
    CHECK(th_now_ms() - t0 < 10000);
    CHECK(lp.ms < 20000);                     /* the claim ended with the server */
    /* API.md: shutting down answers 503 unavailable; an empty claim (200) is also fine.
     * Dropping the parked request without any reply is not a clean shutdown. */
    if (!CHECK(lp.r.status == 200 || lp.r.status == 503))
        fprintf(stderr, "  parked claim got status %ld on SIGTERM\n", lp.r.status);
    if (lp.r.status == 200) CHECK_EQ(json_array_size(jpath(lp.r.json, "jobs")), 0);
    if (lp.r.status == 503) CHECK_STR_EQ(jstr(lp.r.json, "error.code"), "unavailable");
    resp_free(&lp.r);
    testsrv_stop(c.s);
}

/* How many of the parked claims have returned with a job. */
struct herd { struct lp lp[16]; int n; };

static bool herd_n_claimed(struct herd *h, int want)
{
    int got = 0;
    for (int i = 0; i < h->n; i++)
        got += __atomic_load_n(&h->lp[i].ms, __ATOMIC_SEQ_CST) > 0 &&
               json_array_size(jpath(h->lp[i].r.json, "jobs")) == 1;
    return got >= want;
}

static bool herd_one(void *arg) { return herd_n_claimed(arg, 1); }
static bool herd_all(void *arg) { return herd_n_claimed(arg, ((struct herd *)arg)->n); }

/* Issue 5: a commit wakes one parked claimer per queue, not all of them. With a
 * broadcast, 16 idle workers turned each new job into 16 claim transactions. */
TEST(one_job_wakes_one_of_many_idle_long_polls)
{
    struct st_ctx c = st_setup();
    struct herd h = { .n = 16 };
    pthread_t th[16];
    int64_t ops0, commits;
    ts_store_counters(c.s, &ops0, &commits);
    for (int i = 0; i < h.n; i++) {
        h.lp[i] = (struct lp){ .s = c.s, .worker = c.worker, .queue = i < 12 ? "ha" : "hb",
                               .body = "{\"worker_id\":\"herd\",\"wait_ms\":30000}" };
        REQUIRE_EQ(pthread_create(&th[i], NULL, lp_run, &h.lp[i]), 0);
    }
    /* every claimer has made its first (empty) attempt: one store op each */
    int64_t ops = ops0;
    for (int64_t end = th_now_ms() + 10000; ops - ops0 < h.n && th_now_ms() < end;)
        ts_store_counters(c.s, &ops, &commits);
    REQUIRE_EQ(ops - ops0, h.n);
    poll_until(never, NULL, 300);             /* let them park (see above) */
    ts_store_counters(c.s, &ops0, &commits);
    char id[TS_ID_MAX];
    st_enq(c.s, c.alice, id, "{\"type\":\"t\",\"queue\":\"ha\"}");
    REQUIRE(poll_until(herd_one, &h, 10000));
    poll_until(never, NULL, 300);             /* room for any further (wasted) claims */
    ts_store_counters(c.s, &ops, &commits);
    /* the create, the claim that took the job, the claimer it passed the wake-up to
     * (PostgreSQL counts its due-check as an operation), a spare. A broadcast made 12 or
     * more (every "ha" claimer saw the job due and tried to claim it). */
    CHECK(ops - ops0 <= 4);
    fprintf(stderr, "  one job cost %" PRId64 " store ops\n", ops - ops0);
    /* every queue is still served: the rest of "ha" and all of "hb" get a job each */
    for (int i = 1; i < h.n; i++)
        st_enq(c.s, c.alice, id, i < 12 ? "{\"type\":\"t\",\"queue\":\"ha\"}"
                                          : "{\"type\":\"t\",\"queue\":\"hb\"}");
    CHECK(poll_until(herd_all, &h, 10000));
    for (int i = 0; i < h.n; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(h.lp[i].r.status, 200);
        CHECK_EQ(json_array_size(jpath(h.lp[i].r.json, "jobs")), 1);
        CHECK(h.lp[i].ms < 10000);
        resp_free(&h.lp[i].r);
    }
    testsrv_stop(c.s);
}

TEST_MAIN()
