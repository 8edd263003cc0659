/*
 * test_poison.c - RELIABILITY.md T6: a poison pill. One job (max_attempts 5, priority 100 so
 * it is at the head of its queue whenever it is due) kills the worker that claims it, on
 * every attempt: modelled as a claimer that takes it and never reports, so its lease runs
 * out and the maintenance rescue (run by the fake-clock advance) counts that as a failed
 * attempt. Goals:
 *   - the poison job is delivered at most 5 times (claims that returned it), attempts == 5,
 *     then it is `failed` with error_code `lease_expired` (the rescue's code, ST_RESCUE in
 *     src/store/sqlite/sq_conn.c) and is never delivered again;
 *   - healthy jobs of the same queue are never blocked behind it: in every claim round of
 *     its life the other claimers all get healthy jobs, every healthy job completes on its
 *     first delivery; the share of claim slots the poison took is < 10% (the throughput
 *     drop, counted in claim slots per fake-clock round, not wall time: no timing flakes).
 * Fake clock: K claimers per round, each claims one job with a 1 s lease; healthy jobs are
 * completed at once; the clock then moves 500 ms.
 */
#include "rel.h"

enum { K = 4, STEP_MS = 500, LEASE_MS = 1000, MAX_ROUNDS = 400 };

/* POST /v1/jobs/batch of n healthy jobs in queue q; REQUIREs 201. */
static void bulk_healthy(struct testsrv *s, const char *tok, const char *q, int from, int n)
{
    size_t cap = (size_t)n * 96 + 64, len = 0;
    char *b = malloc(cap);
    REQUIRE(b);
    len += (size_t)snprintf(b + len, cap - len, "{\"jobs\":[");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(b + len, cap - len,
                                "%s{\"type\":\"ok\",\"queue\":\"%s\",\"params\":{\"i\":%d}}",
                                i ? "," : "", q, from + i);
    snprintf(b + len, cap - len, "]}");
    struct resp r;
    long st = ts_req(s, "POST", "/v1/jobs/batch", tok, b, &r);
    if (st != 201) fprintf(stderr, "  batch -> %ld %.300s\n", st, r.body);
    REQUIRE_EQ(st, 201);
    REQUIRE_EQ(jint(r.json, "created"), n);
    resp_free(&r);
    free(b);
}

/* One claim of max 1 as worker wid: 1 and id/lease/attempts filled, or 0 when empty. */
static int claim_one(struct testsrv *s, const char *w, const char *q, int wid, char *id,
                     char *lease, int64_t *attempts)
{
    char body[128];
    struct resp r;
    snprintf(body, sizeof body, "{\"worker_id\":\"w%d\",\"max\":1,\"lease_ms\":%d}", wid,
             LEASE_MS);
    long st = ts_claim(s, w, q, body, &r);
    if (st != 200) fprintf(stderr, "  claim -> %ld %.300s\n", st, r.body);
    REQUIRE_EQ(st, 200);
    int got = 0;
    if (json_array_size(jpath(r.json, "jobs")) == 1) {
        snprintf(id, TS_ID_MAX, "%s", jstr(r.json, "jobs.0.id"));
        snprintf(lease, TS_ID_MAX, "%s", jstr(r.json, "jobs.0.lease_token"));
        *attempts = jint(r.json, "jobs.0.attempts");
        got = 1;
    }
    resp_free(&r);
    return got;
}

TEST(t6_poison_pill_fails_after_five_lease_losses_without_blocking_the_queue)
{
    struct testsrv *s = testsrv_start(NULL);
    const char *u = ts_token_limit(s, "alice", "user", 0);
    const char *w = ts_token(s, "worker-1", "worker");
    const int H = 400;                      /* healthy jobs: more than the poison's life uses */
    const char *q = "pp";
    char poison[TS_ID_MAX], id[TS_ID_MAX], lease[TS_ID_MAX], body[256];
    struct resp r;

    bulk_healthy(s, u, q, 0, H / 2);
    st_enq(s, u, poison,
           "{\"type\":\"poison\",\"queue\":\"pp\",\"priority\":100,\"max_attempts\":5}");
    bulk_healthy(s, u, q, H / 2, H / 2);

    int deliveries = 0, healthy_done = 0, rounds_life = 0, healthy_life = 0;
    int blocked_rounds = 0, rescues_seen = 0, rounds = 0;
    int64_t fake_ms = 0, last_attempts = 0;
    bool poison_done = false;
    char pstatus[32] = "", pcode[64] = "";
    while (!poison_done && rounds < MAX_ROUNDS) {
        rounds++;
        int healthy_round = 0, poison_round = 0, empty_round = 0;
        for (int k = 0; k < K; k++) {
            int64_t att = 0;
            if (!claim_one(s, w, q, k, id, lease, &att)) {
                empty_round++;
                continue;
            }
            if (!strcmp(id, poison)) {
                deliveries++;
                poison_round++;
                last_attempts = att;
                CHECK_EQ(att, deliveries);   /* every delivery is counted as an attempt */
                continue;                     /* the worker dies: no heartbeat, no report */
            }
            snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"result\":{\"ok\":true}}",
                     lease);
            REQUIRE_EQ(st_post0(s, w, id, "complete", body), 200);
            CHECK_EQ(att, 1);                 /* a healthy job is never re-delivered */
            healthy_round++;
            healthy_done++;
        }
        rounds_life++;
        healthy_life += healthy_round;
        /* nothing but the poison may take a slot while healthy jobs are due */
        if (healthy_round + poison_round != K || empty_round) {
            blocked_rounds++;
            fprintf(stderr, "  round %d: healthy %d poison %d empty %d (done %d of %d)\n",
                    rounds, healthy_round, poison_round, empty_round, healthy_done, H);
        }
        CHECK(poison_round <= 1);
        REQUIRE_EQ(ts_advance(s, STEP_MS), 200);
        fake_ms += STEP_MS;
        REQUIRE_EQ(ts_get(s, s->admin, poison, &r), 200);
        snprintf(pstatus, sizeof pstatus, "%s", jstr(r.json, "status"));
        const char *c = jstr(r.json, "error_code");
        snprintf(pcode, sizeof pcode, "%s", c ? c : "");
        if (poison_round == 0 && !strcmp(pstatus, "pending") && deliveries > 0) {
            /* waiting out its backoff: only ever after a rescue of the last delivery */
            CHECK_STR_EQ(pcode, "lease_expired");
            CHECK_EQ(jint(r.json, "attempts"), deliveries);
        }
        if (!strcmp(pstatus, "failed")) poison_done = true;
        resp_free(&r);
    }
    REQUIRE(poison_done);
    /* rescues: every delivery ended in a lease loss (the last one in `failed`) */
    REQUIRE_EQ(ts_get(s, s->admin, poison, &r), 200);
    CHECK_STR_EQ(jstr(r.json, "status"), "failed");
    CHECK_STR_EQ(jstr(r.json, "error_code"), "lease_expired");
    CHECK_EQ(jint(r.json, "attempts"), 5);
    CHECK_EQ(jint(r.json, "max_attempts"), 5);
    int64_t pattempts = jint(r.json, "attempts");
    fprintf(stderr, "  poison: status %s error_code %s attempts %" PRId64 " (%s)\n",
            jstr(r.json, "status"), jstr(r.json, "error_code"), pattempts,
            jstr(r.json, "error_message") ? jstr(r.json, "error_message") : "-");
    resp_free(&r);
    rescues_seen = (int)pattempts;
    CHECK(deliveries <= 5);
    CHECK_EQ(deliveries, pattempts);
    CHECK_EQ(last_attempts, 5);
    CHECK_EQ(blocked_rounds, 0);
    CHECK(healthy_done < H);                 /* the healthy backlog outlived the poison */

    /* the throughput drop while the poison lived, in claim slots */
    double drop = 1.0 - (double)healthy_life / (double)(K * rounds_life);
    fprintf(stderr, "  poison life: %d rounds of %d ms (%" PRId64 " ms fake), %d claim slots,"
            " %d deliveries of the poison, %d healthy completions -> drop %.1f%%\n",
            rounds_life, STEP_MS, fake_ms, K * rounds_life, deliveries, healthy_life,
            100.0 * drop);
    CHECK(drop < 0.10);

    /* drain the rest; the poison is never delivered again, even an hour later */
    int after_rounds = 0, extra_poison = 0;
    while (healthy_done < H && after_rounds < MAX_ROUNDS) {
        after_rounds++;
        int got_round = 0;
        for (int k = 0; k < K; k++) {
            int64_t att = 0;
            if (!claim_one(s, w, q, k, id, lease, &att)) continue;
            got_round++;
            if (!strcmp(id, poison)) {
                extra_poison++;
                continue;
            }
            snprintf(body, sizeof body, "{\"lease_token\":\"%s\"}", lease);
            REQUIRE_EQ(st_post0(s, w, id, "complete", body), 200);
            CHECK_EQ(att, 1);
            healthy_done++;
        }
        if (got_round != K && healthy_done < H) {
            fprintf(stderr, "  drain round %d: %d of %d slots used\n", after_rounds,
                    got_round, K);
            blocked_rounds++;
        }
        REQUIRE_EQ(ts_advance(s, STEP_MS), 200);
    }
    REQUIRE_EQ(ts_advance(s, 3600000), 200);
    for (int k = 0; k < K; k++) {
        int64_t att = 0;
        if (claim_one(s, w, q, k, id, lease, &att)) extra_poison++;
    }
    CHECK_EQ(extra_poison, 0);
    CHECK_EQ(blocked_rounds, 0);
    CHECK_EQ(healthy_done, H);
    CHECK_EQ(st_total(s, u, "queue=pp&status=completed"), H);
    CHECK_EQ(st_total(s, u, "queue=pp&status=failed"), 1);
    CHECK_EQ(st_total(s, u, "queue=pp&status=pending"), 0);
    CHECK_EQ(st_total(s, u, "queue=pp&status=processing"), 0);
    fprintf(stderr, "  T6: poison delivered %d times (max_attempts 5), %d lease-loss attempts,"
            " failed/lease_expired; %d/%d healthy completed, each on its first delivery,"
            " 0 blocked rounds; drain %d more rounds\n",
            deliveries, rescues_seen, healthy_done, H, after_rounds);
    testsrv_stop(s);
}

TEST_MAIN()
