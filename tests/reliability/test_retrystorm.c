/*
 * test_retrystorm.c - RELIABILITY.md T7: a retry storm. N jobs (CI 2,000, JQ_LONG 10,000;
 * max_attempts 3) are claimed, then all fail (retryable) at the same fake instant T0.
 * Backoff (src/core/retry.c): after failed attempt n the delay is d = min(max, base*2^(n-1))
 * with equal jitter, d - d/2 + uniform[0, d/2): so run_at - T0 lies in [base/2, base). The
 * server runs with --backoff-base-ms 60000 so the first window is 30 s wide (30 one-second
 * buckets; with the default 1 s base the whole window fits in one bucket and says nothing).
 * Goals:
 *   - every run_at of the storm (read back through the admin list, cursor pages) is inside
 *     the formula's window, and no 1-s bucket holds more than 3x the mean rate over the
 *     window the retries actually spread across ([min run_at, max run_at]);
 *   - no job is claimable before its run_at; stepping the fake clock 1 s at a time, the
 *     claims per step (the retry rate workers see) again stay under 3x the mean, for the
 *     second attempt (after the storm) and the third (after the attempt-2 failures, which
 *     go through the batch path of /next);
 *   - every job ran (was claimed) exactly max_attempts = 3 times, never more, and ends
 *     `failed` with the worker's error_code; nothing is claimable a day later.
 */
#include "rel.h"

enum { MAXA = 3, BASE_MS = 60000, CLAIM_MAX = 100, MAX_STEPS = 400 };

static const char *const storm_flags[] = { "--backoff-base-ms", "60000", NULL };

struct jobs {
    int n;
    char (*id)[TS_ID_MAX];      /* sorted, for bsearch */
    int *runs;                  /* claims that returned job i */
};

static int cmp_id(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static int job_index(struct jobs *J, const char *id)
{
    char key[TS_ID_MAX];
    snprintf(key, sizeof key, "%s", id ? id : "");
    char (*p)[TS_ID_MAX] = bsearch(key, J->id, (size_t)J->n, sizeof *J->id, cmp_id);
    return p ? (int)(p - J->id) : -1;
}

/* POST /v1/admin/clock {advance_ms}; returns the fake now in ms (REQUIREs 200). */
static int64_t clock_adv(struct testsrv *s, int64_t ms)
{
    char body[64];
    struct resp r;
    snprintf(body, sizeof body, "{\"advance_ms\":%" PRId64 "}", ms);
    REQUIRE_EQ(ts_req(s, "POST", "/v1/admin/clock", s->admin, body, &r), 200);
    int64_t now = jint(r.json, "now_ms");
    resp_free(&r);
    REQUIRE(now != INT64_MIN);
    return now;
}

static void urlenc(const char *in, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (; *in && n + 4 < cap; in++) {
        unsigned char ch = (unsigned char)*in;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[n++] = (char)ch;
        } else {
            out[n++] = '%';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 15];
        }
    }
    out[n] = '\0';
}

/* Creates n jobs in queue "storm" through /v1/jobs/batch (1,000 per call). */
static void create_all(struct testsrv *s, const char *tok, struct jobs *J, int n)
{
    J->n = 0;
    J->id = calloc((size_t)n, sizeof *J->id);
    J->runs = calloc((size_t)n, sizeof *J->runs);
    REQUIRE(J->id && J->runs);
    size_t cap = 1000 * 96 + 64;
    char *b = malloc(cap);
    REQUIRE(b);
    for (int from = 0; from < n; from += 1000) {
        int m = n - from < 1000 ? n - from : 1000;
        size_t len = (size_t)snprintf(b, cap, "{\"jobs\":[");
        for (int i = 0; i < m; i++)
            len += (size_t)snprintf(b + len, cap - len,
                                    "%s{\"type\":\"t\",\"queue\":\"storm\",\"max_attempts\":%d,"
                                    "\"params\":{\"i\":%d}}", i ? "," : "", MAXA, from + i);
        snprintf(b + len, cap - len, "]}");
        struct resp r;
        long st = ts_req(s, "POST", "/v1/jobs/batch", tok, b, &r);
        if (st != 201) fprintf(stderr, "  batch -> %ld %.300s\n", st, r.body);
        REQUIRE_EQ(st, 201);
        json_t *a = jpath(r.json, "jobs");
        REQUIRE_EQ(json_array_size(a), m);
        for (int i = 0; i < m; i++)
            snprintf(J->id[J->n++], TS_ID_MAX, "%s", jstr(json_array_get(a, (size_t)i), "id"));
        resp_free(&r);
    }
    free(b);
    qsort(J->id, (size_t)J->n, sizeof *J->id, cmp_id);
}

struct claimed {
    int n, cap;                /* entries used, room */
    int *idx;                  /* job index */
    char (*lease)[TS_ID_MAX];
};

/* Claims every due job of "storm" (max 100 per call) into c (appending); counts runs.
 * Returns the number claimed by this call. */
static int claim_due(struct testsrv *s, const char *w, struct jobs *J, struct claimed *c)
{
    int got = 0;
    for (;;) {
        struct resp r;
        char body[96];
        snprintf(body, sizeof body, "{\"worker_id\":\"ws\",\"max\":%d}", CLAIM_MAX);
        long st = ts_claim(s, w, "storm", body, &r);
        if (st != 200) fprintf(stderr, "  claim -> %ld %.300s\n", st, r.body);
        REQUIRE_EQ(st, 200);
        json_t *a = jpath(r.json, "jobs");
        size_t k = json_array_size(a);
        for (size_t i = 0; i < k; i++) {
            json_t *j = json_array_get(a, i);
            int x = job_index(J, jstr(j, "id"));
            REQUIRE(x >= 0);
            REQUIRE(c->n < c->cap);
            J->runs[x]++;
            CHECK_EQ(jint(j, "attempts"), J->runs[x]);
            c->idx[c->n] = x;
            snprintf(c->lease[c->n], TS_ID_MAX, "%s", jstr(j, "lease_token"));
            c->n++;
            got++;
        }
        resp_free(&r);
        if (k < CLAIM_MAX) return got;
    }
}

/* Fails c's jobs (retryable) through /next in batches of 100, at the current fake instant. */
static void fail_batch(struct testsrv *s, const char *w, struct jobs *J, struct claimed *c)
{
    size_t cap = 100 * 200 + 128;
    char *b = malloc(cap);
    REQUIRE(b);
    for (int from = 0; from < c->n; from += 100) {
        int m = c->n - from < 100 ? c->n - from : 100;
        size_t len = (size_t)snprintf(b, cap, "{\"worker_id\":\"ws\",\"max\":0,\"fail\":[");
        for (int i = 0; i < m; i++)
            len += (size_t)snprintf(b + len, cap - len,
                                    "%s{\"id\":\"%s\",\"lease_token\":\"%s\",\"error_message\":"
                                    "\"boom\",\"error_code\":\"storm\",\"retryable\":true}",
                                    i ? "," : "", J->id[c->idx[from + i]], c->lease[from + i]);
        snprintf(b + len, cap - len, "]}");
        struct resp r;
        long st = ts_req(s, "POST", "/v1/queues/storm/next", w, b, &r);
        if (st != 200) fprintf(stderr, "  next -> %ld %.300s\n", st, r.body);
        REQUIRE_EQ(st, 200);
        CHECK_EQ(jint(r.json, "failed"), m);
        CHECK_EQ(json_array_size(jpath(r.json, "errors")), 0);
        resp_free(&r);
    }
    free(b);
}

/* max bucket / mean rate over [lo, hi] of the per-second counts cnt[0..nb) holding total;
 * prints the line. */
static double bucket_ratio(const char *what, const int *cnt, int nb, int total, double window_s)
{
    int mx = 0;
    for (int i = 0; i < nb; i++) if (cnt[i] > mx) mx = cnt[i];
    if (window_s < 1.0) window_s = 1.0;
    double mean = total / window_s;
    double ratio = mx / mean;
    fprintf(stderr, "  %s: %d retries over %.1f s in %d one-second buckets: mean %.1f/s,"
            " max bucket %d (%.2fx the mean)\n", what, total, window_s, nb, mean, mx, ratio);
    return ratio;
}

/* Steps the fake clock 1 s at a time, claiming what is due at each step and failing it at
 * once (retryable, /next batch); stops when every job was claimed this round. Checks the
 * claims per step against 3x the mean over the steps that had claims, and that those steps
 * span at least min_spread_s (a burst in one step would pass the ratio trivially). */
static void stepped_round(struct testsrv *s, const char *w, struct jobs *J, const char *what,
                          int64_t earliest, int min_spread_s)
{
    struct claimed c = { 0, J->n, calloc((size_t)J->n, sizeof(int)),
                         calloc((size_t)J->n, TS_ID_MAX) };
    int *per = calloc(MAX_STEPS, sizeof(int));
    REQUIRE(c.idx && c.lease && per);
    /* nothing before the earliest run_at */
    int64_t now = clock_adv(s, 0);
    if (earliest - 1 > now) now = clock_adv(s, earliest - 1 - now);
    int early = claim_due(s, w, J, &c);
    CHECK_EQ(early, 0);
    int steps = 0, first = -1, last = -1;
    while (c.n < J->n && steps < MAX_STEPS) {
        now = clock_adv(s, 1000);
        struct claimed one = { 0, J->n - c.n, c.idx + c.n, c.lease + c.n };
        int got = claim_due(s, w, J, &one);
        per[steps] = got;
        if (got) {
            if (first < 0) first = steps;
            last = steps;
        }
        fail_batch(s, w, J, &one);
        c.n += got;
        steps++;
    }
    REQUIRE_EQ(c.n, J->n);
    int nb = last - first + 1;
    double ratio = bucket_ratio(what, per + first, nb, c.n, (double)nb);
    CHECK(ratio <= 3.0);
    CHECK(nb >= min_spread_s);                  /* spread by jitter, not one burst */
    free(c.idx);
    free(c.lease);
    free(per);
}

TEST(t7_retry_storm_spreads_retries_and_stops_at_max_attempts)
{
    th_set_timeout(300);
    struct testsrv *s = st_start_with(storm_flags);
    const char *u = ts_token_limit(s, "alice", "user", 0);
    const char *w = ts_token(s, "worker-1", "worker");
    const int N = REL_N(2000, 10000);
    struct jobs J;
    int64_t t_start = th_now_ms();
    create_all(s, u, &J, N);
    REQUIRE_EQ(J.n, N);

    /* attempt 1: claim all, then all fail at the same fake instant T0 (per-job /fail) */
    struct claimed c = { 0, N, calloc((size_t)N, sizeof(int)), calloc((size_t)N, TS_ID_MAX) };
    REQUIRE(c.idx && c.lease);
    REQUIRE_EQ(claim_due(s, w, &J, &c), N);
    int64_t t0 = clock_adv(s, 0);
    char body[256];
    int bad_window = 0;
    for (int i = 0; i < c.n; i++) {
        struct resp r;
        snprintf(body, sizeof body, "{\"lease_token\":\"%s\",\"error_message\":\"boom\","
                 "\"error_code\":\"storm\",\"retryable\":true}", c.lease[i]);
        long st = st_post(s, w, J.id[c.idx[i]], "fail", body, &r);
        if (st != 200) fprintf(stderr, "  fail -> %ld %.300s\n", st, r.body);
        REQUIRE_EQ(st, 200);
        CHECK_STR_EQ(jstr(r.json, "status"), "pending");
        int64_t d = ts_parse_time(jstr(r.json, "run_at")) - t0;
        if (d < BASE_MS / 2 || d >= BASE_MS) bad_window++;
        resp_free(&r);
    }
    CHECK_EQ(clock_adv(s, 0), t0);             /* the storm took no fake time */

    /* read every run_at back (admin list, cursor pages) and bucket them by 1 s */
    int64_t *run_at = calloc((size_t)N, sizeof *run_at);
    REQUIRE(run_at);
    int seen = 0, pages = 0;
    char cur[2048] = "", enc[4096], path[4200];
    do {
        struct resp r;
        urlenc(cur, enc, sizeof enc);
        snprintf(path, sizeof path, "/v1/jobs?queue=storm&order=asc&limit=1000%s%s",
                 *enc ? "&cursor=" : "", enc);
        long st = ts_req(s, "GET", path, s->admin, NULL, &r);
        if (st != 200) fprintf(stderr, "  list -> %ld %.300s\n", st, r.body);
        REQUIRE_EQ(st, 200);
        json_t *a = jpath(r.json, "jobs");
        for (size_t i = 0; i < json_array_size(a) && seen < N; i++) {
            json_t *j = json_array_get(a, i);
            CHECK_STR_EQ(jstr(j, "status"), "pending");
            CHECK_EQ(jint(j, "attempts"), 1);
            run_at[seen++] = ts_parse_time(jstr(j, "run_at"));
        }
        const char *nc = jstr(r.json, "next_cursor");
        snprintf(cur, sizeof cur, "%s", nc ? nc : "");
        resp_free(&r);
        pages++;
    } while (*cur && pages < 100);
    REQUIRE_EQ(seen, N);
    int64_t mn = INT64_MAX, mx = INT64_MIN;
    for (int i = 0; i < N; i++) {
        if (run_at[i] < mn) mn = run_at[i];
        if (run_at[i] > mx) mx = run_at[i];
        if (run_at[i] - t0 < BASE_MS / 2 || run_at[i] - t0 >= BASE_MS) bad_window++;
    }
    CHECK_EQ(bad_window, 0);
    int nb = (int)((mx - mn) / 1000) + 1;
    int *cnt = calloc((size_t)nb, sizeof *cnt);
    REQUIRE(cnt);
    for (int i = 0; i < N; i++) cnt[(run_at[i] - mn) / 1000]++;
    fprintf(stderr, "  storm at T0: %d jobs failed at one fake instant; run_at - T0 in"
            " [%.3f s, %.3f s] (formula: [%d s, %d s)), %d list pages\n", N,
            (double)(mn - t0) / 1000, (double)(mx - t0) / 1000, BASE_MS / 2000,
            BASE_MS / 1000, pages);
    double ratio = bucket_ratio("attempt-1 backoff (run_at)", cnt, nb, N,
                                (double)(mx - mn) / 1000.0);
    CHECK(ratio <= 3.0);
    /* the jitter really spreads them (no jitter: one bucket, and the ratio alone passes) */
    CHECK(mx - mn >= BASE_MS / 2 * 9 / 10);
    free(cnt);
    free(run_at);

    /* attempts 2 and 3: the clock steps 1 s, due jobs are claimed and fail at once */
    stepped_round(s, w, &J, "attempt-2 claims per 1-s step", mn, BASE_MS / 2 * 9 / 10000);
    stepped_round(s, w, &J, "attempt-3 claims per 1-s step",
                  t0 + BASE_MS / 2 + BASE_MS,   /* earliest: a T0+30 s failure + 60 s */
                  BASE_MS * 9 / 10000);         /* jitter width of attempt 2 is 60 s */

    /* exhausted: nothing more, ever; every job ran exactly max_attempts times */
    clock_adv(s, 86400000);
    struct claimed none = { 0, N, c.idx, c.lease };
    CHECK_EQ(claim_due(s, w, &J, &none), 0);
    int over = 0, exact = 0;
    for (int i = 0; i < N; i++) {
        if (J.runs[i] > MAXA) over++;
        if (J.runs[i] == MAXA) exact++;
    }
    CHECK_EQ(over, 0);
    CHECK_EQ(exact, N);
    CHECK_EQ(st_total(s, s->admin, "queue=storm&status=failed"), N);
    CHECK_EQ(st_total(s, s->admin, "queue=storm&status=pending"), 0);
    CHECK_EQ(st_total(s, s->admin, "queue=storm&status=processing"), 0);
    /* spot-check the final state of a few jobs */
    for (int i = 0; i < N; i += N / 8) {
        struct resp r;
        REQUIRE_EQ(ts_get(s, s->admin, J.id[i], &r), 200);
        CHECK_STR_EQ(jstr(r.json, "status"), "failed");
        CHECK_EQ(jint(r.json, "attempts"), MAXA);
        CHECK_STR_EQ(jstr(r.json, "error_code"), "storm");
        resp_free(&r);
    }
    fprintf(stderr, "  T7: %d jobs, max_attempts %d: %d ran exactly %d times, %d more;"
            " all failed; %" PRId64 " ms wall\n", N, MAXA, exact, MAXA, over,
            th_now_ms() - t_start);
    free(c.idx);
    free(c.lease);
    free(J.id);
    free(J.runs);
    testsrv_stop(s);
}

TEST_MAIN()
